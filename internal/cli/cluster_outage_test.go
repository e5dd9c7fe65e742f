package cli

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/poll"
	"github.com/twmb/franz-go/pkg/kfake"
)

// outageDuration is how long each dependency stays down: the 30 s the
// scale-out issue names. Engines back off up to 5 s between retries, so
// this spans several retries.
const outageDuration = 30 * time.Second

// proxy is a TCP forwarder the test can take down (listener and every
// connection closed: the service looks dead, connections are refused) and
// bring back on the same address.
type proxy struct {
	t      *testing.T
	target string
	addr   string
	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]bool
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{t: t, target: target, addr: ln.Addr().String(), ln: ln, conns: map[net.Conn]bool{}}
	go p.serve(ln)
	t.Cleanup(p.down)
	return p
}

func (p *proxy) serve(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		d, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln { // went down meanwhile
			p.mu.Unlock()
			c.Close()
			d.Close()
			return
		}
		p.conns[c], p.conns[d] = true, true
		p.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			_, _ = io.Copy(dst, src)
			dst.Close()
			src.Close()
			p.mu.Lock()
			delete(p.conns, dst)
			delete(p.conns, src)
			p.mu.Unlock()
		}
		go pipe(c, d)
		go pipe(d, c)
	}
}

func (p *proxy) down() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

func (p *proxy) up() {
	p.t.Helper()
	var ln net.Listener
	poll.Until(p.t, 5*time.Second, "the proxy back up on "+p.addr, func() error {
		var err error
		ln, err = net.Listen("tcp", p.addr)
		return err
	})
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go p.serve(ln)
}

// TestClusterOutages takes PostgreSQL, Redis and Kafka down for 30 s each,
// in parallel subtests with a cluster each, while events keep streaming.
// During the outage the API keeps answering GET /price with the last known
// price and reports not ready; afterwards demand and history are exact:
// nothing was lost or applied twice.
func TestClusterOutages(t *testing.T) {
	for _, dep := range []string{"postgres", "redis", "kafka"} {
		t.Run(dep, func(t *testing.T) {
			t.Parallel()
			outage(t, dep)
		})
	}
}

func outage(t *testing.T, dep string) {
	kafkaPort, kafkaDir := freePort(t), t.TempDir()
	var kopts []kfake.Opt
	if dep == "kafka" {
		// Kafka goes down for real: the broker stops and comes back on the
		// same port with its log (kfake clients learn broker addresses from
		// metadata, so a proxy in front would be bypassed).
		kopts = []kfake.Opt{kfake.Ports(kafkaPort), kfake.DataDir(kafkaDir)}
	}
	c := newCluster(t, kopts...)
	c.migrate()
	// PostgreSQL and Redis are reached through proxies.
	pgu, _ := url.Parse(c.pgURL)
	pgProxy := newProxy(t, pgu.Host)
	pgu.Host = pgProxy.addr
	redisProxy := newProxy(t, c.redisAddr)
	env := []string{"DATABASE_URL=" + pgu.String(), "REDIS_ADDR=" + redisProxy.addr}
	eng := c.start("engine", env, "engine", "--metrics-addr", "127.0.0.1:0", "--partitions", "4", "--tick", "200ms",
		"--session-timeout", "3s", "--no-migrate")
	api := c.start("api", env, "api", "--addr", "127.0.0.1:0")
	s := &server{t: t, url: api.addr}
	engine := &server{t: t, url: eng.addr}
	poll.Until(t, 30*time.Second, "API ready", func() error {
		code, m := s.do("GET", "/readyz", "", "", "")
		return poll.Check(code == 200, "%d %v", code, m)
	})

	st := c.stream(uint64(len(dep)))
	ctx, stopStream := context.WithCancel(context.Background())
	streamDone := make(chan error, 1)
	go func() {
		for ctx.Err() == nil {
			if err := st.send(ctx, 200); err != nil && ctx.Err() == nil {
				streamDone <- err
				return
			}
			time.Sleep(50 * time.Millisecond) // paces the stream
		}
		streamDone <- nil
	}()
	time.Sleep(2 * time.Second) // two seconds of traffic before the outage
	poll.Until(t, 30*time.Second, "prices moving", func() error {
		code, m := s.do("GET", "/price/PA", "", "", "")
		return poll.Check(code == 200 && m["price_source"] == "dynamic", "%d %v", code, m)
	})

	var restartKafka func()
	switch dep {
	case "postgres":
		pgProxy.down()
	case "redis":
		redisProxy.down()
	case "kafka":
		c.kfake.Close()
		restartKafka = func() {
			kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond),
				kfake.Ports(kafkaPort), kfake.DataDir(kafkaDir))
			if err != nil {
				t.Fatalf("restarting Kafka: %v", err)
			}
			t.Cleanup(kc.Close)
		}
	}
	down := time.Now()
	// While it is down: last known prices, not ready.
	poll.Until(t, 20*time.Second, "API reports not ready", func() error {
		code, m := s.do("GET", "/readyz", "", "", "")
		return poll.Check(code == 503, "%d %v", code, m)
	})
	poll.Until(t, 20*time.Second, "engine reports not ready", func() error {
		code, m := engine.do("GET", "/readyz", "", "", "")
		return poll.Check(code == 503, "%d %v", code, m)
	})
	_, before := s.do("GET", "/price/PA", "", "", "")
	for time.Since(down) < outageDuration {
		for _, id := range []string{"PA", "PJ"} {
			if code, m := s.do("GET", "/price/"+id, "", "", ""); code != 200 || m["price"] == nil {
				t.Fatalf("%s outage: GET /price/%s = %d %v, want the last known price", dep, id, code, m)
			}
		}
		if code, m := s.do("GET", "/prices", "", "", ""); code != 200 || len(m["prices"].([]any)) != 10 {
			t.Fatalf("%s outage: GET /prices = %d %v", dep, code, m)
		}
		time.Sleep(time.Second) // paces the checks for the outage's length
	}
	if dep == "redis" {
		// Price updates do not wait for Redis: the replica's own copy, fed
		// by price-updates, kept moving through the outage.
		if _, after := s.do("GET", "/price/PA", "", "", ""); after["version"].(float64) <= before["version"].(float64) {
			t.Errorf("redis outage: PA stayed at version %v, want it to keep moving via price-updates", before["version"])
		}
	}
	switch dep {
	case "postgres":
		pgProxy.up()
	case "redis":
		redisProxy.up()
	case "kafka":
		restartKafka()
	}
	poll.Until(t, 60*time.Second, "API and engine ready again", func() error {
		code, m := s.do("GET", "/readyz", "", "", "")
		ecode, em := engine.do("GET", "/readyz", "", "", "")
		return poll.Check(code == 200 && ecode == 200, "API %d %v, engine %d %v", code, m, ecode, em)
	})
	time.Sleep(2 * time.Second) // two seconds of traffic after the recovery
	stopStream()
	if err := <-streamDone; err != nil {
		t.Fatal(err)
	}
	t.Logf("%s was down %v; %d events streamed", dep, outageDuration, st.sent)
	c.waitDemand(st.want, 90*time.Second)
	got := c.historyCounts()
	for _, id := range demoIDs {
		if got[id] != st.count[id] {
			t.Errorf("%s: %d dynamic history rows, want %d", id, got[id], st.count[id])
		}
	}
	// The engine counted the outage in its metrics.
	metric := map[string]string{"postgres": `dynaprice_commit_errors_total{role="engine"}`, "redis": "dynaprice_stream_live_write_errors_total"}[dep]
	if metric != "" {
		if v := metricValue(t, engine.url+"/metrics", metric); v <= 0 {
			t.Errorf("%s = %v after the outage, want > 0", metric, v)
		}
	}
	api.stop(t)
	eng.stop(t)
}

// metricValue reads one metric from a Prometheus endpoint: name may
// include its labels; unlabelled, it also matches a metric with labels.
func metricValue(t *testing.T, url, name string) float64 {
	t.Helper()
	resp, err := httpGet(url)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(resp, "\n") {
		// Unlabelled, or with labels such as the partition metrics' role.
		if rest, ok := strings.CutPrefix(l, name+"{"); ok {
			_, l, _ = strings.Cut(rest, "} ")
			l = name + " " + l
		}
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return -1
}

var httpClient = &http.Client{Timeout: 10 * time.Second}

func httpGet(url string) (string, error) {
	resp, err := httpClient.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return string(b), err
}
