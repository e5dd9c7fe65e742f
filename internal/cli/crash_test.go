package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

var (
	binOnce sync.Once
	binDir  string
	binPath string
	binErr  error
)

// TestMain removes the binary buildBinary shares between tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildBinary compiles dynaprice once per test run.
func buildBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "dynaprice-bin-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "dynaprice")
		if out, err := exec.Command("go", "build", "-o", binPath, "../../cmd/dynaprice").CombinedOutput(); err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

// startProcess runs `dynaprice serve` as a child process, with extra flags
// if given, and returns its base URL once it is ready.
func startProcess(t *testing.T, bin, dir string, extra ...string) (*exec.Cmd, string) {
	t.Helper()
	args := append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--sync", "full", "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), "ADMIN_API_KEY="+adminKey)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	re := regexp.MustCompile(`serving on (http://\S+)`)
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if m := re.FindStringSubmatch(sc.Text()); m != nil {
			go func() { _, _ = io.Copy(io.Discard, out) }()
			return cmd, m[1]
		}
	}
	_ = cmd.Process.Kill()
	t.Fatalf("no address printed: %v", sc.Err())
	return nil, ""
}

type crashEvent struct {
	id      string
	product string
	typ     string
	weight  float64
}

func (e crashEvent) json() string {
	return fmt.Sprintf(`{"event_type":%q,"product_id":%q,"event_id":%q,"user_id":"U1","price":1}`, e.typ, e.product, e.id)
}

func postBatch(url string, evs []crashEvent) (bool, error) {
	var b strings.Builder
	b.WriteByte('[')
	for i, e := range evs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(e.json())
	}
	b.WriteByte(']')
	req, _ := http.NewRequest("POST", url+"/events", strings.NewReader(b.String()))
	req.Header.Set("X-API-Key", adminKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 202 {
		return false, fmt.Errorf("status %d: %s", resp.StatusCode, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil || m["rejected"] != 0.0 {
		return false, fmt.Errorf("unexpected answer %s", body)
	}
	return true, nil
}

func demandOf(t *testing.T, url, id string) float64 {
	t.Helper()
	resp, err := http.Get(url + "/price/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m["demand"].(float64)
}

// TestKill9LosesNothingAcknowledged posts events from several clients,
// kills the server with SIGKILL at random moments, restarts it and checks
// that every acknowledged event counted exactly once: demand after restart
// covers all acknowledged events and no more than were sent; re-sending
// everything (retries with the same event ids) then yields the exact total.
func TestKill9LosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test builds and runs the binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 7))
	products := []string{"PA", "PB", "PC", "PD", "PE", "PF", "PG", "PH", "PI", "PJ"}
	types := []struct {
		name string
		w    float64
	}{{"view", 1}, {"cart", 3}, {"purchase", 5}}
	var all []crashEvent
	next := 0
	mkBatch := func(n int) []crashEvent {
		evs := make([]crashEvent, n)
		for i := range evs {
			ty := types[rng.IntN(3)]
			evs[i] = crashEvent{id: fmt.Sprintf("ev-%d", next), product: products[rng.IntN(len(products))], typ: ty.name, weight: ty.w}
			next++
		}
		all = append(all, evs...)
		return evs
	}
	acked := map[string]float64{}
	sent := map[string]float64{}
	for round := 0; round < 3; round++ {
		cmd, url := startProcess(t, bin, dir)
		// Check the previous round's promise before sending more.
		for _, p := range products {
			d := demandOf(t, url, p)
			if d < acked[p] || d > sent[p] {
				t.Fatalf("round %d: %s demand %v, want between acknowledged %v and sent %v", round, p, d, acked[p], sent[p])
			}
		}
		var mu sync.Mutex
		var wg sync.WaitGroup
		batches := make(chan []crashEvent)
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for evs := range batches {
					ok, _ := postBatch(url, evs)
					if ok {
						mu.Lock()
						for _, e := range evs {
							acked[e.product] += e.weight
						}
						mu.Unlock()
					}
				}
			}()
		}
		killAt := time.After(time.Duration(200+rng.IntN(800)) * time.Millisecond)
	feed:
		for {
			evs := mkBatch(1 + rng.IntN(300))
			mu.Lock()
			for _, e := range evs {
				sent[e.product] += e.weight
			}
			mu.Unlock()
			select {
			case batches <- evs:
			case <-killAt:
				break feed
			}
		}
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		close(batches)
		wg.Wait()
		_ = cmd.Wait()
	}
	cmd, url := startProcess(t, bin, dir)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	total := map[string]float64{}
	for _, e := range all {
		total[e.product] += e.weight
	}
	for _, p := range products {
		d := demandOf(t, url, p)
		if d < acked[p] || d > sent[p] {
			t.Fatalf("final: %s demand %v, want between acknowledged %v and sent %v", p, d, acked[p], sent[p])
		}
	}
	// Retry everything: already-applied ids are not applied twice.
	for i := 0; i < len(all); i += 500 {
		if ok, err := postBatch(url, all[i:min(i+500, len(all))]); !ok {
			t.Fatal(err)
		}
	}
	for _, p := range products {
		if d := demandOf(t, url, p); d != total[p] {
			t.Fatalf("after retries %s demand %v, want exactly %v", p, d, total[p])
		}
	}
	t.Logf("%d events, acknowledged demand %v", len(all), acked)
}

// TestSIGTERMGracefulShutdown checks the lifecycle promise with traffic in
// progress: a WebSocket client connected and a POST /events whose body is
// still arriving when SIGTERM comes. /readyz turns 503 at once while
// requests are still served for the drain period; then the listener closes,
// the request in flight is finished and acknowledged, the WebSocket client
// gets "going away", and the process exits 0 within 10 s. A restart shows
// every acknowledged event.
func TestSIGTERMGracefulShutdown(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cmd, url := startProcess(t, bin, dir, "--drain", "2s")
	if ok, err := postBatch(url, []crashEvent{{id: "a", product: "PA", typ: "purchase"}, {id: "b", product: "PA", typ: "cart"}}); !ok {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(url, "http")+"/ws/prices", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	wsErr := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.Read(ctx); err != nil {
				wsErr <- err
				return
			}
		}
	}()

	// A POST /events whose body has begun but not ended (chunked, from a
	// pipe), on a connection of its own.
	first := "[" + crashEvent{id: "c", product: "PB", typ: "purchase"}.json()
	tr, sent := markTransport(first)
	body, more := io.Pipe()
	defer more.Close()
	req, _ := http.NewRequest("POST", url+"/events", body)
	req.Header.Set("X-API-Key", adminKey)
	type answer struct {
		code int
		body map[string]any
		err  error
	}
	inFlight := make(chan answer, 1)
	go func() {
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			inFlight <- answer{err: err}
			return
		}
		defer resp.Body.Close()
		var m map[string]any
		err = json.NewDecoder(resp.Body).Decode(&m)
		inFlight <- answer{resp.StatusCode, m, err}
	}()
	if _, err := io.WriteString(more, first); err != nil {
		t.Fatal(err)
	}
	// The first chunk is on the connection: in the server's socket.
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("the body's first chunk was not sent")
	}

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	// Draining: not ready, but alive and still serving.
	awaitDraining(t, url, start)
	if ok, err := postBatch(url, []crashEvent{{id: "d", product: "PC", typ: "cart"}}); !ok {
		t.Fatalf("POST /events while draining: %v", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("the checks of the drain took %v, longer than the drain; the test cannot tell what it saw", time.Since(start))
	}

	// After the drain the listener closes...
	awaitListenerClosed(t, url, start)
	// ...while the request in flight is still finished and acknowledged.
	if _, err := io.WriteString(more, ","+crashEvent{id: "e", product: "PB", typ: "view"}.json()+"]"); err != nil {
		t.Fatal(err)
	}
	more.Close()
	a := <-inFlight
	if a.err != nil || a.code != 202 || a.body["accepted"] != 2.0 || a.body["rejected"] != 0.0 {
		t.Fatalf("request in flight at SIGTERM: %d %v %v, want 202 with 2 accepted", a.code, a.body, a.err)
	}
	if err := <-wsErr; websocket.CloseStatus(err) != websocket.StatusGoingAway {
		t.Fatalf("WebSocket after SIGTERM: %v, want going away (1001)", err)
	}

	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10*time.Second - time.Since(start)):
		_ = cmd.Process.Kill()
		t.Fatal("did not exit within 10s of SIGTERM")
	}
	t.Logf("exited in %v", time.Since(start))

	cmd, url = startProcess(t, bin, dir)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	for p, want := range map[string]float64{"PA": 8, "PB": 6, "PC": 3} {
		if d := demandOf(t, url, p); d != want {
			t.Errorf("%s demand after restart = %v, want %v", p, d, want)
		}
	}
}

// markTransport returns a transport for one request, and a channel closed
// once its connection has sent mark.
func markTransport(mark string) (*http.Transport, <-chan struct{}) {
	sent := make(chan struct{})
	var once sync.Once
	tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		return &markWriter{Conn: c, mark: []byte(mark), sent: func() { once.Do(func() { close(sent) }) }}, nil
	}}
	return tr, sent
}

// markWriter is a connection that calls sent once what it wrote contains
// mark. The transport writes from one goroutine.
type markWriter struct {
	net.Conn
	mark    []byte
	written []byte
	sent    func()
}

func (c *markWriter) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written = append(c.written, p[:n]...)
	if bytes.Contains(c.written, c.mark) {
		c.sent()
	}
	return n, err
}
