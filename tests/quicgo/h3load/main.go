// spooky-h3load: an independent HTTP/3 peer for spooky's tests, on Debian's quic-go 0.29 (the
// QUIC stack Caddy uses). It is not built on spooky's own QUIC/HTTP/3 modules, so it exercises
// spooky with another implementation's ACK, flow-control and scheduling patterns.
//
//	spooky-h3load client -url https://127.0.0.1:P [-c CONNS] [-m STREAMS] [-duration 20s]
//	                     [-n MAX] [-plan POST:/echo:65536,GET:/size/1000] [-timeout 10s]
//	spooky-h3load server -addr 127.0.0.1:P -cert C -key K [-id NAME]
//
// client: CONNS connections, each with STREAMS concurrent request loops, for -duration or until
// -n requests were sent. Each loop cycles through -plan: METHOD:PATH[:BODY_BYTES]. An echo
// response (POST/PUT to /echo) must equal the body sent; a GET /size/N response must be N
// bytes. A request that is not complete after -timeout is a stall. SIGINT or SIGTERM ends the
// run early: no new requests start, those in flight finish. Prints one JSON object; -log FILE
// also writes one line per request (start and end times, status, error) for timelines. -noread
// takes each response's headers and never reads its body until the run ends (a stalled reader;
// stderr says "holding an unread response" for each).
//
// server: an HTTP/3 backend that echoes POST/PUT bodies at /echo, sends N bytes at /size/N and
// greets any other path; every response carries x-backend-id.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lucas-clemente/quic-go"
	"github.com/lucas-clemente/quic-go/http3"
)

type step struct {
	method string
	path   string
	body   []byte
	want   int64 // expected response body length, -1 = not checked
	echo   bool
}

func parsePlan(s string) ([]step, error) {
	var plan []step
	for _, item := range strings.Split(s, ",") {
		parts := strings.Split(item, ":")
		if len(parts) < 2 || len(parts) > 3 {
			return nil, fmt.Errorf("plan item %q: want METHOD:PATH[:BODY_BYTES]", item)
		}
		st := step{method: parts[0], path: parts[1], want: -1}
		if len(parts) == 3 {
			n, err := strconv.Atoi(parts[2])
			if err != nil || n < 0 {
				return nil, fmt.Errorf("plan item %q: bad body size", item)
			}
			st.body = make([]byte, n)
			for i := range st.body {
				st.body[i] = byte('a' + (i*7+n)%26)
			}
		}
		if (st.method == "POST" || st.method == "PUT") && strings.HasPrefix(st.path, "/echo") {
			st.echo = true
			st.want = int64(len(st.body))
		}
		if strings.HasPrefix(st.path, "/size/") && st.method == "GET" {
			n, err := strconv.ParseInt(strings.TrimPrefix(st.path, "/size/"), 10, 64)
			if err == nil {
				st.want = n
			}
		}
		plan = append(plan, st)
	}
	return plan, nil
}

type result struct {
	Requests  int64            `json:"requests"`
	OK        int64            `json:"ok"`
	Failed    int64            `json:"failed"`
	Stalled   int64            `json:"stalled"`
	Mismatch  int64            `json:"mismatch"`
	Errors    map[string]int64 `json:"errors"`
	Statuses  map[string]int64 `json:"statuses"`
	P50Ms     float64          `json:"p50_ms"`
	P99Ms     float64          `json:"p99_ms"`
	MaxMs     float64          `json:"max_ms"`
	Seconds   float64          `json:"seconds"`
	Conns     int              `json:"connections"`
	Streams   int              `json:"streams_per_connection"`
	BytesUp   int64            `json:"bytes_up"`
	BytesDown int64            `json:"bytes_down"`
}

type collector struct {
	mu       sync.Mutex
	lat      []time.Duration
	errors   map[string]int64
	statuses map[string]int64
	res      result
	log      *bufio.Writer // -log: one JSON line per request, or nil
}

type logLine struct {
	Start  float64 `json:"start"` // unix seconds
	Ms     float64 `json:"ms"`
	Status int     `json:"status"`
	Err    string  `json:"err,omitempty"`
}

func (c *collector) record(start time.Time, d time.Duration, status int, up, down int64, errKind string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.log != nil {
		line, _ := json.Marshal(&logLine{Start: float64(start.UnixNano()) / 1e9,
			Ms: float64(d.Microseconds()) / 1000, Status: status, Err: errKind})
		c.log.Write(append(line, '\n'))
		c.log.Flush()
	}
	c.res.Requests++
	c.res.BytesUp += up
	c.res.BytesDown += down
	c.lat = append(c.lat, d)
	if status != 0 {
		c.statuses[strconv.Itoa(status)]++
	}
	switch errKind {
	case "":
		c.res.OK++
	case "stalled":
		c.res.Stalled++
		c.res.Failed++
	case "mismatch":
		c.res.Mismatch++
		c.res.Failed++
	default:
		c.res.Failed++
	}
	if errKind != "" {
		c.errors[errKind]++
	}
}

func classify(err error, ctx context.Context) string {
	if errors.Is(err, context.DeadlineExceeded) || ctx.Err() == context.DeadlineExceeded {
		return "stalled"
	}
	s := err.Error()
	if len(s) > 80 {
		s = s[:80]
	}
	return s
}

// holdUnread, for -noread: a client that takes the response headers and then never reads the
// body, until the run ends (the stalled reader a proxy must not let starve others).
var holdUnread chan struct{}

func oneRequest(rt *http3.RoundTripper, base string, st *step, timeout time.Duration, col *collector) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	if holdUnread != nil {
		ctx, cancel = context.WithCancel(context.Background())
	}
	defer cancel()
	var body io.Reader
	if st.body != nil {
		body = bytes.NewReader(st.body)
	}
	req, err := http.NewRequestWithContext(ctx, st.method, base+st.path, body)
	if err != nil {
		col.record(time.Now(), 0, 0, 0, 0, "bad request: "+err.Error())
		return
	}
	if st.body != nil {
		req.ContentLength = int64(len(st.body))
	}
	start := time.Now()
	resp, err := rt.RoundTrip(req)
	if err != nil {
		col.record(start, time.Since(start), 0, 0, 0, classify(err, ctx))
		return
	}
	if holdUnread != nil {
		fmt.Fprintf(os.Stderr, "holding an unread response, status %d\n", resp.StatusCode)
		<-holdUnread
		resp.Body.Close()
		col.record(start, time.Since(start), resp.StatusCode, int64(len(st.body)), 0, "")
		return
	}
	h := sha256.New()
	n, err := io.Copy(h, resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		col.record(start, d, resp.StatusCode, int64(len(st.body)), n, classify(err, ctx))
		return
	}
	if resp.StatusCode != 200 {
		col.record(start, d, resp.StatusCode, int64(len(st.body)), n, "status "+strconv.Itoa(resp.StatusCode))
		return
	}
	if st.want >= 0 && n != st.want {
		col.record(start, d, resp.StatusCode, int64(len(st.body)), n, "mismatch")
		return
	}
	if st.echo {
		want := sha256.Sum256(st.body)
		if !bytes.Equal(h.Sum(nil), want[:]) {
			col.record(start, d, resp.StatusCode, int64(len(st.body)), n, "mismatch")
			return
		}
	}
	col.record(start, d, resp.StatusCode, int64(len(st.body)), n, "")
}

func percentile(sorted []time.Duration, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p * float64(len(sorted)-1))
	return float64(sorted[i].Microseconds()) / 1000
}

func runClient(args []string) int {
	fs := flag.NewFlagSet("client", flag.ExitOnError)
	url := fs.String("url", "", "https://HOST:PORT")
	conns := fs.Int("c", 4, "connections")
	streams := fs.Int("m", 4, "concurrent requests per connection")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	max := fs.Int64("n", 0, "stop after this many requests (0 = no limit)")
	planArg := fs.String("plan", "GET:/", "METHOD:PATH[:BODY_BYTES],...")
	timeout := fs.Duration("timeout", 10*time.Second, "a request not complete by then is a stall")
	logPath := fs.String("log", "", "write one JSON line per request to this file")
	noread := fs.Bool("noread", false, "never read response bodies (hold them until the end)")
	authority := fs.String("authority", "", "override :authority")
	fs.Parse(args)
	if *url == "" {
		fmt.Fprintln(os.Stderr, "client: -url is required")
		return 2
	}
	plan, err := parsePlan(*planArg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	col := &collector{errors: map[string]int64{}, statuses: map[string]int64{}}
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 2
		}
		defer f.Close()
		col.log = bufio.NewWriter(f)
		defer col.log.Flush()
	}
	var sent int64
	var stopping int32
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	if *noread {
		holdUnread = make(chan struct{})
	}
	var once sync.Once
	end := func() {
		atomic.StoreInt32(&stopping, 1)
		if holdUnread != nil {
			once.Do(func() { close(holdUnread) })
		}
	}
	go func() {
		<-stop
		end()
	}()
	deadline := time.Now().Add(*duration)
	time.AfterFunc(*duration, end)
	var wg sync.WaitGroup
	start := time.Now()
	rts := make([]*http3.RoundTripper, *conns)
	for c := 0; c < *conns; c++ {
		tlsConf := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h3"}}
		if *authority != "" {
			tlsConf.ServerName = strings.Split(*authority, ":")[0]
		}
		rts[c] = &http3.RoundTripper{TLSClientConfig: tlsConf, DisableCompression: true,
			QuicConfig: &quic.Config{MaxIncomingStreams: -1}}
		for m := 0; m < *streams; m++ {
			wg.Add(1)
			go func(rt *http3.RoundTripper, idx int) {
				defer wg.Done()
				for i := idx; time.Now().Before(deadline) && atomic.LoadInt32(&stopping) == 0; i++ {
					if *max > 0 && atomic.AddInt64(&sent, 1) > *max {
						return
					}
					oneRequest(rt, *url, &plan[i%len(plan)], *timeout, col)
				}
			}(rts[c], c*(*streams)+m)
		}
	}
	wg.Wait()
	for _, rt := range rts {
		rt.Close()
	}
	col.mu.Lock()
	defer col.mu.Unlock()
	sort.Slice(col.lat, func(i, j int) bool { return col.lat[i] < col.lat[j] })
	col.res.P50Ms = percentile(col.lat, 0.50)
	col.res.P99Ms = percentile(col.lat, 0.99)
	if len(col.lat) > 0 {
		col.res.MaxMs = float64(col.lat[len(col.lat)-1].Microseconds()) / 1000
	}
	col.res.Seconds = time.Since(start).Seconds()
	col.res.Conns = *conns
	col.res.Streams = *streams
	col.res.Errors = col.errors
	col.res.Statuses = col.statuses
	out, _ := json.Marshal(&col.res)
	fmt.Println(string(out))
	return 0
}

func runServer(args []string) int {
	fs := flag.NewFlagSet("server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:4433", "listen address")
	cert := fs.String("cert", "", "certificate chain (PEM)")
	key := fs.String("key", "", "private key (PEM)")
	id := fs.String("id", "quic-go", "x-backend-id value")
	fs.Parse(args)
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-backend-id", *id)
		switch {
		case strings.HasPrefix(r.URL.Path, "/echo") && (r.Method == "POST" || r.Method == "PUT"):
			body, err := io.ReadAll(r.Body)
			if err != nil {
				w.WriteHeader(400)
				return
			}
			w.Header().Set("content-length", strconv.Itoa(len(body)))
			w.WriteHeader(200)
			w.Write(body)
		case strings.HasPrefix(r.URL.Path, "/size/"):
			n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/size/"))
			if err != nil || n < 0 {
				w.WriteHeader(400)
				return
			}
			w.Header().Set("content-length", strconv.Itoa(n))
			w.WriteHeader(200)
			chunk := bytes.Repeat([]byte("abcdefghijklmnopqrstuvwxyz"), 640)
			for n > 0 {
				k := n
				if k > len(chunk) {
					k = len(chunk)
				}
				if _, err := w.Write(chunk[:k]); err != nil {
					return
				}
				n -= k
			}
		default:
			io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "hello from %s: %s %s\n", *id, r.Method, r.URL.Path)
		}
	})
	srv := &http3.Server{Addr: *addr, Handler: mux}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		srv.Close()
		os.Exit(0)
	}()
	fmt.Fprintf(os.Stderr, "h3load server listening on %s\n", *addr)
	if err := srv.ListenAndServeTLS(*cert, *key); err != nil {
		fmt.Fprintln(os.Stderr, "server:", err)
		return 1
	}
	return 0
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: spooky-h3load client|server [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "client":
		os.Exit(runClient(os.Args[2:]))
	case "server":
		os.Exit(runServer(os.Args[2:]))
	default:
		fmt.Fprintln(os.Stderr, "usage: spooky-h3load client|server [flags]")
		os.Exit(2)
	}
}
