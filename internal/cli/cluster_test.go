package cli

// Scale-out tests: engine and api processes (the built binary) against the
// real PostgreSQL and Redis of the machine (DYNAPRICE_TEST_POSTGRES,
// DYNAPRICE_TEST_REDIS) and a kfake Kafka broker in this process, spoken
// to over TCP. Each test gets its own database and Redis database number.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/poll"
	"github.com/jackc/pgx/v5"
	"github.com/redis/rueidis"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

// controlKeys sign the control records of the cluster tests.
const controlKeys = "it:cluster-test-control-key-0123456789abcdef"

// deleteRedisPrefix deletes the keys under prefix, which a test created.
func deleteRedisPrefix(t *testing.T, rc rueidis.Client, prefix string) {
	ctx := context.Background()
	var cursor uint64
	for {
		e, err := rc.Do(ctx, rc.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Logf("cleaning up Redis keys %s*: %v", prefix, err)
			return
		}
		if len(e.Elements) > 0 {
			_ = rc.Do(ctx, rc.B().Del().Key(e.Elements...).Build()).Error()
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}

type cluster struct {
	t           *testing.T
	bin         string
	brokers     string
	kfake       *kfake.Cluster
	pgURL       string // the test's own database
	redisAddr   string // host:port
	redisPrefix string // of every key this test's processes write
	redis       rueidis.Client
	logDir      string
	env         []string
}

// newCluster prepares the services of one test; kopts configure the
// Kafka broker.
func newCluster(t *testing.T, kopts ...kfake.Opt) *cluster {
	t.Helper()
	pg, rd := os.Getenv("DYNAPRICE_TEST_POSTGRES"), os.Getenv("DYNAPRICE_TEST_REDIS")
	if pg == "" || rd == "" {
		t.Skip("DYNAPRICE_TEST_POSTGRES and DYNAPRICE_TEST_REDIS not set")
	}
	c := &cluster{t: t, bin: buildBinary(t), logDir: t.TempDir()}
	kc, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100 * time.Millisecond)}, kopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(kc.Close)
	c.kfake, c.brokers = kc, strings.Join(kc.ListenAddrs(), ",")

	// A fresh database.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg)
	if err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("dp_it_%d_%d", os.Getpid(), rand.Uint32())
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_, _ = conn.Exec(context.Background(), "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)")
		conn.Close(context.Background())
	})
	u, err := url.Parse(pg)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	c.pgURL = u.String()

	// Redis keys of its own: a prefix no one else uses, whose keys it
	// deletes when done. The test never flushes a database: the Redis it
	// is given may hold someone's data.
	c.redisAddr, c.redisPrefix = rd, name+":"
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{rd}, DisableCache: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteRedisPrefix(t, rc, c.redisPrefix); rc.Close() })
	c.redis = rc
	c.env = append(os.Environ(), "KAFKA_BROKERS="+c.brokers, "DATABASE_URL="+c.pgURL, "REDIS_ADDR="+rd,
		"DYNAPRICE_REDIS_PREFIX="+c.redisPrefix, "DYNAPRICE_CONTROL_KEYS="+controlKeys, "ADMIN_API_KEY="+adminKey, "DYNAPRICE_LOG_LEVEL=warn")
	return c
}

// proc is a running dynaprice process.
type proc struct {
	cmd  *exec.Cmd
	addr string // from its first output line
	done chan struct{}
}

// start runs `dynaprice <args>` and waits for the line announcing its
// address.
func (c *cluster) start(name string, env []string, args ...string) *proc {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(append([]string(nil), c.env...), env...)
	logf, err := os.OpenFile(filepath.Join(c.logDir, name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	cmd.Stderr = logf
	out, err := cmd.StdoutPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); logf.Close(); close(p.done) }()
	c.t.Cleanup(func() { p.kill() })
	re := regexp.MustCompile(`(?:on|serving on) (http://\S+)`)
	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	deadline := time.After(60 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				c.t.Fatalf("%s exited before announcing its address; log:\n%s", name, c.log(name))
			}
			if m := re.FindStringSubmatch(l); m != nil {
				p.addr = m[1]
				go func() {
					for range lines {
					}
				}()
				return p
			}
		case <-deadline:
			c.t.Fatalf("%s announced no address; log:\n%s", name, c.log(name))
		}
	}
}

func (c *cluster) log(name string) string {
	b, _ := os.ReadFile(filepath.Join(c.logDir, name+".log"))
	if len(b) > 8000 {
		b = b[len(b)-8000:]
	}
	return string(b)
}

func (p *proc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
		if code := p.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%v exited with %d after SIGTERM", p.cmd.Args, code)
		}
	case <-time.After(30 * time.Second):
		t.Errorf("%v did not stop within 30s of SIGTERM", p.cmd.Args)
		p.kill()
	}
}

// migrate runs `dynaprice migrate`, seeding the demo catalog.
func (c *cluster) migrate() {
	c.t.Helper()
	cmd := exec.Command(c.bin, "migrate")
	cmd.Env = c.env
	if out, err := cmd.CombinedOutput(); err != nil {
		c.t.Fatalf("migrate: %v\n%s", err, out)
	}
}

func (c *cluster) engine(name string, extra ...string) *proc {
	return c.start(name, nil, append([]string{"engine", "--metrics-addr", "127.0.0.1:0", "--partitions", "6",
		"--tick", "200ms", "--session-timeout", "2s", "--no-migrate"}, extra...)...)
}

func (c *cluster) client(opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(c.brokers)}, opts...)...)
	if err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// demand reads the original's Redis key product:demand:<id>.
func (c *cluster) demand(id string) (float64, bool) {
	s, err := c.redis.Do(context.Background(), c.redis.B().Get().Key(c.redisPrefix+"product:demand:"+id).Build()).ToString()
	if err != nil {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	return f, err == nil
}

// waitDemand waits until Redis shows exactly want for every product.
func (c *cluster) waitDemand(want map[string]float64, timeout time.Duration) {
	c.t.Helper()
	poll.Until(c.t, timeout, "the demands in Redis", func() error {
		for id, d := range want {
			if got, ok := c.demand(id); !ok || got != d {
				return fmt.Errorf("%s: Redis demand %v (present %v), want %v", id, got, ok, d)
			}
		}
		return nil
	})
}

// historyCounts returns each product's dynamic price_history rows.
func (c *cluster) historyCounts() map[string]int {
	c.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.pgURL)
	if err != nil {
		c.t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, "SELECT product_id, count(*) FROM price_history WHERE source = 'dynamic' GROUP BY product_id")
	if err != nil {
		c.t.Fatal(err)
	}
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			c.t.Fatal(err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		c.t.Fatal(err)
	}
	return out
}

// stream is the test's producer: it knows the exact demand and event count
// per product it has produced.
type stream struct {
	t       *testing.T
	keyed   *kgo.Client
	unkeyed *kgo.Client
	rnd     *rand.Rand
	mu      sync.Mutex
	want    map[string]float64
	count   map[string]int
	sent    int
}

var demoIDs = []string{"PA", "PB", "PC", "PD", "PE", "PF", "PG", "PH", "PI", "PJ"}

func (c *cluster) stream(seed uint64) *stream {
	return &stream{t: c.t,
		keyed:   c.client(kgo.DefaultProduceTopic("product-events"), kgo.ProducerLinger(2*time.Millisecond)),
		unkeyed: c.client(kgo.DefaultProduceTopic("product-events"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()), kgo.ProducerLinger(2*time.Millisecond)),
		rnd:     rand.New(rand.NewPCG(seed, seed+1)), want: map[string]float64{}, count: map[string]int{}}
}

// send produces n events, half of them without a key like the original's
// producers, and returns once Kafka acknowledged all of them.
func (s *stream) send(ctx context.Context, n int) error {
	types := []string{"view", "cart", "purchase"}
	var keyed, unkeyed []*kgo.Record
	s.mu.Lock()
	for i := 0; i < n; i++ {
		id, typ := demoIDs[s.rnd.IntN(len(demoIDs))], types[s.rnd.IntN(3)]
		s.want[id] += map[string]float64{"view": 1, "cart": 3, "purchase": 5}[typ]
		s.count[id]++
		s.sent++
		v := []byte(`{"event_type":"` + typ + `","product_id":"` + id + `","user_id":"U` + strconv.Itoa(i%97) +
			`","timestamp":` + strconv.FormatInt(time.Now().UnixMilli(), 10) + `,"price":1}`)
		if i%2 == 0 {
			keyed = append(keyed, &kgo.Record{Key: []byte(id), Value: v})
		} else {
			unkeyed = append(unkeyed, &kgo.Record{Value: v})
		}
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	var errs [2]error
	wg.Add(2)
	go func() { defer wg.Done(); errs[0] = s.keyed.ProduceSync(ctx, keyed...).FirstErr() }()
	go func() { defer wg.Done(); errs[1] = s.unkeyed.ProduceSync(ctx, unkeyed...).FirstErr() }()
	wg.Wait()
	return errors.Join(errs[0], errs[1])
}

// TestClusterKill9ExactlyOnce streams 100,000 events (half unkeyed) through
// engine processes that are killed with SIGKILL at random moments,
// restarted, joined by a third engine and left by it again, and then checks
// that demand in Redis is the exact weighted sum, price_history holds
// exactly one dynamic row per event, and the last price update of every
// product carries its final price and demand.
func TestClusterKill9ExactlyOnce(t *testing.T) {
	c := newCluster(t)
	c.migrate()
	engines := []*proc{c.engine("engine-0"), c.engine("engine-1")}
	s := c.stream(7)
	ctx := context.Background()

	const total, batch = 100_000, 1_000
	produced := make(chan error, 1)
	go func() {
		for s.sent < total {
			if err := s.send(ctx, batch); err != nil {
				produced <- err
				return
			}
			time.Sleep(120 * time.Millisecond) // paces the stream over the chaos
		}
		produced <- nil
	}()
	rnd := rand.New(rand.NewPCG(11, 12))
	kills, restarts := 0, 0
	var extra *proc
	chaos := time.NewTicker(700 * time.Millisecond)
	defer chaos.Stop()
	var prodErr error
loop:
	for round := 0; ; round++ {
		select {
		case prodErr = <-produced:
			break loop
		case <-chaos.C:
		}
		switch {
		case round%5 == 2 && extra == nil: // an engine joins mid-stream
			extra = c.engine("engine-extra")
		case round%5 == 4 && extra != nil: // and leaves again
			if rnd.IntN(2) == 0 {
				extra.kill()
			} else {
				extra.stop(t)
			}
			extra = nil
		default:
			i := rnd.IntN(len(engines))
			engines[i].kill()
			kills++
			time.Sleep(time.Duration(rnd.IntN(300)) * time.Millisecond) // down for a random while
			engines[i] = c.engine(fmt.Sprintf("engine-%d", i))
			restarts++
		}
	}
	if prodErr != nil {
		t.Fatal(prodErr)
	}
	if extra != nil {
		extra.kill()
	}
	t.Logf("%d events produced; %d engines killed with SIGKILL and restarted", s.sent, kills)
	if kills < 3 {
		t.Fatalf("only %d kills happened; the test did not exercise crashes", kills)
	}
	c.waitDemand(s.want, 90*time.Second)

	// Exactly one dynamic history row per event.
	got := c.historyCounts()
	for _, id := range demoIDs {
		if got[id] != s.count[id] {
			t.Errorf("%s: %d dynamic history rows, want %d (one per event)", id, got[id], s.count[id])
		}
	}

	// The newest price update of each product (highest version) carries
	// the final price and demand.
	final := map[string]map[string]any{}
	follow := c.client(kgo.ConsumeTopics("price-updates"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := follow.PollFetches(pctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			var m map[string]any
			if err := json.Unmarshal(r.Value, &m); err != nil {
				t.Errorf("price update %q: %v", r.Value, err)
				return
			}
			id, _ := m["product_id"].(string)
			if old, ok := final[id]; !ok || old["version"].(float64) < m["version"].(float64) {
				final[id] = m
			}
		})
		done := true
		for _, id := range demoIDs {
			if m, ok := final[id]; !ok || m["demand"].(float64) != s.want[id] {
				done = false
			}
		}
		if done {
			break
		}
	}
	for _, id := range demoIDs {
		m := final[id]
		if m == nil || m["demand"].(float64) != s.want[id] {
			t.Errorf("%s: newest price update %v, want demand %v", id, m, s.want[id])
			continue
		}
		price, _ := c.redis.Do(ctx, c.redis.B().Get().Key(c.redisPrefix+"product:price:"+id).Build()).ToString()
		if p, _ := strconv.ParseFloat(price, 64); p != m["new_price"].(float64) {
			t.Errorf("%s: newest price update says %v, Redis %v", id, m["new_price"], price)
		}
	}
	// And through the API, as clients of the original read it.
	api := c.start("api", nil, "api", "--addr", "127.0.0.1:0")
	sv := &server{t: t, url: api.addr}
	code, m := sv.do("GET", "/prices", "", "", "")
	ps, _ := m["prices"].([]any)
	if code != 200 || len(ps) != len(demoIDs) {
		t.Fatalf("GET /prices = %d %v", code, m)
	}
	for _, p := range ps {
		p := p.(map[string]any)
		if id := p["product_id"].(string); p["demand"] != s.want[id] {
			t.Errorf("GET /prices: %s demand %v, want %v", id, p["demand"], s.want[id])
		}
	}
	api.stop(t)
	for _, e := range engines {
		e.stop(t)
	}
}

// TestClusterRebalance has a third engine join two others mid-stream and
// leave again, and checks that it really took partitions over and gave
// them back, and that nothing was lost or applied twice across the moves.
func TestClusterRebalance(t *testing.T) {
	c := newCluster(t)
	c.migrate()
	engines := []*proc{c.engine("engine-0"), c.engine("engine-1")}
	owned := func(p *proc) float64 {
		return metricValue(t, p.addr+"/metrics", `dynaprice_partitions_owned{role="engine"}`)
	}
	poll.Until(t, 20*time.Second, "two engines share the partitions", func() error {
		a, b := owned(engines[0]), owned(engines[1])
		return poll.Check(a > 0 && b > 0 && a+b == 6, "partitions owned: %v and %v", a, b)
	})
	s := c.stream(21)
	ctx := context.Background()
	send := func(rounds int) {
		for i := 0; i < rounds; i++ {
			if err := s.send(ctx, 500); err != nil {
				t.Fatal(err)
			}
			time.Sleep(50 * time.Millisecond) // paces the stream through the rebalance
		}
	}
	send(20)
	third := c.engine("engine-2")
	joined := make(chan struct{})
	go func() {
		defer close(joined)
		send(40) // keeps streaming through the rebalance
	}()
	poll.Until(t, 30*time.Second, "the third engine takes partitions over", func() error {
		a, b, x := owned(engines[0]), owned(engines[1]), owned(third)
		return poll.Check(x > 0 && a+b+x == 6, "partitions owned: %v, %v and the third %v", a, b, x)
	})
	<-joined
	third.stop(t) // leaves the group gracefully, mid-stream
	send(20)
	poll.Until(t, 30*time.Second, "the two engines own every partition again", func() error {
		a, b := owned(engines[0]), owned(engines[1])
		return poll.Check(a+b == 6, "partitions owned: %v and %v", a, b)
	})
	c.waitDemand(s.want, 60*time.Second)
	got := c.historyCounts()
	for _, id := range demoIDs {
		if got[id] != s.count[id] {
			t.Errorf("%s: %d dynamic history rows, want %d", id, got[id], s.count[id])
		}
	}
	t.Logf("%d events across a join and a leave", s.sent)
	for _, e := range engines {
		e.stop(t)
	}
}

// freePort returns a TCP port free at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
