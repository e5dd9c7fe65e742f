package cli

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
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

// startProcess runs `dynaprice serve` as a child process and returns its
// base URL.
func startProcess(t *testing.T, bin, dir string) (*exec.Cmd, string) {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--addr", "127.0.0.1:0", "--data", dir, "--sync", "full", "--log-level", "warn")
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

// TestSIGTERMGracefulShutdown checks the lifecycle promise: on SIGTERM the
// process finishes what it accepted and exits 0 within 10 s.
func TestSIGTERMGracefulShutdown(t *testing.T) {
	bin := buildBinary(t)
	dir := t.TempDir()
	cmd, url := startProcess(t, bin, dir)
	if ok, err := postBatch(url, []crashEvent{{id: "a", product: "PA", typ: "purchase"}, {id: "b", product: "PA", typ: "cart"}}); !ok {
		t.Fatal(err)
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("exit: %v", err)
		}
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("did not exit within 10s of SIGTERM")
	}
	t.Logf("exited in %v", time.Since(start))
	cmd, url = startProcess(t, bin, dir)
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	if d := demandOf(t, url, "PA"); d != 8 {
		t.Fatalf("demand after restart = %v, want 8", d)
	}
}
