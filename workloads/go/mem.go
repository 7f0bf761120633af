// mem.go: Go memory workloads for oomsim. Go's GC lets the heap grow to
// twice what is live (GOGC=100) before it collects, so a program holding
// 100 MiB while churning garbage peaks near 200 MiB; GOMEMLIMIT (Go 1.19)
// makes the GC run before that, at the cost of CPU. Past the cgroup's limit
// the kernel kills it; past what the system gives, Go itself dies with
// "fatal error: runtime: out of memory" (never recovered here).
//
//	heap  hold --live bytes in reachable slices, then allocate and drop
//	      --garbage bytes per second (default: as fast as it can) for --duration
//	leak  live growth to --size at --rate
//
// Usage: mem heap --live SIZE [--garbage SIZE] [--duration DUR]
//
//	mem leak --size SIZE [--rate SIZE] [--hold DUR]
//
// Both take --rate SIZE (live growth), --chunk SIZE (default 1Mi), --hold DUR.
// Sizes: 512Mi, 64Ki, 1Gi or bytes; durations: 500ms, 2s, 1m or seconds.
// Build: go build -o mem mem.go (standard library only, no go.mod needed).
package main

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"time"
)

var keep [][]byte // live: reachable until exit
var sink []byte   // garbage: replaced by the next allocation

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mem heap --live SIZE [--garbage SIZE] [--duration DUR] | leak --size SIZE  [--rate SIZE] [--chunk SIZE] [--hold DUR]")
	os.Exit(2)
}

func size(s string) int64 {
	m := regexp.MustCompile(`^(\d+)(Ki|Mi|Gi)?$`).FindStringSubmatch(s)
	if m == nil {
		usage()
	}
	n, err := strconv.ParseInt(m[1], 10, 64)
	if err != nil {
		usage()
	}
	return n << map[string]uint{"": 0, "Ki": 10, "Mi": 20, "Gi": 30}[m[2]]
}

// duration: Go's own forms (500ms, 2s, 1m) or plain seconds.
func duration(s string) time.Duration {
	if d, err := time.ParseDuration(s); err == nil {
		return d
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return time.Duration(f * float64(time.Second))
	}
	usage()
	return 0
}

// touched allocates n bytes and writes one byte per page: memory fresh from
// the OS is not zeroed again by Go, so without the writes nothing is charged.
func touched(n int64) []byte {
	b := make([]byte, n)
	for i := int64(0); i < n; i += 4096 {
		b[i] = 1
	}
	return b
}

var last time.Time

// report prints at most four lines a second: what is live, the GC's goal for
// the heap (NextGC), collections so far, and the heap and memory from the OS.
func report(line string, force bool) {
	if !force && time.Since(last) < 250*time.Millisecond {
		return
	}
	last = time.Now()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("%s, heap goal %d MiB, gc %d, heap %d MiB, sys %d MiB\n",
		line, ms.NextGC>>20, ms.NumGC, ms.HeapAlloc>>20, ms.Sys>>20)
}

// pace sleeps while `done` bytes since `start` run ahead of `rate` bytes/s (0: never).
func pace(start time.Time, done, rate int64) {
	if rate <= 0 {
		return
	}
	ahead := time.Duration(float64(done)/float64(rate)*float64(time.Second)) - time.Since(start)
	if ahead > 0 {
		time.Sleep(ahead)
	}
}

// grow keeps live slices until `total`, no faster than `rate` bytes/s (0: at once).
func grow(total, rate, chunk int64) {
	start := time.Now()
	for have := int64(0); have < total; {
		n := chunk
		if total-have < n {
			n = total - have
		}
		keep = append(keep, touched(n))
		have += n
		report(fmt.Sprintf("live %d MiB", have>>20), have >= total)
		pace(start, have, rate)
	}
}

// churn allocates and drops `chunk`-sized garbage at `garbage` bytes/s for `d`.
func churn(live, garbage, chunk int64, d time.Duration) {
	start, made := time.Now(), int64(0)
	for time.Since(start) < d {
		sink = touched(chunk)
		made += chunk
		report(fmt.Sprintf("live %d MiB, garbage %d MiB", live>>20, made>>20), false)
		pace(start, made, garbage)
	}
	report(fmt.Sprintf("live %d MiB, garbage %d MiB", live>>20, made>>20), true)
}

func main() {
	if len(os.Args) < 2 || len(os.Args)%2 != 0 {
		usage()
	}
	mode, opts := os.Args[1], map[string]string{}
	common := map[string]bool{"rate": true, "chunk": true, "hold": true}
	allowed := map[string]map[string]bool{
		"heap": {"live": true, "garbage": true, "duration": true},
		"leak": {"size": true},
	}[mode]
	if allowed == nil {
		usage()
	}
	for i := 2; i < len(os.Args); i += 2 {
		k := os.Args[i]
		if len(k) < 3 || k[:2] != "--" || !(allowed[k[2:]] || common[k[2:]]) {
			usage()
		}
		opts[k[2:]] = os.Args[i+1]
	}
	get := func(k, d string) string {
		if v, ok := opts[k]; ok {
			return v
		}
		if d == "" {
			usage()
		}
		return d
	}
	rate, chunk, hold := size(get("rate", "0")), size(get("chunk", "1Mi")), duration(get("hold", "0"))
	if chunk <= 0 {
		usage()
	}
	switch mode {
	case "heap":
		live := size(get("live", ""))
		grow(live, rate, chunk)
		churn(live, size(get("garbage", "0")), chunk, duration(get("duration", "5s")))
	case "leak":
		grow(size(get("size", "")), rate, chunk)
	}
	if hold > 0 {
		fmt.Printf("holding for %v\n", hold)
		time.Sleep(hold)
	}
	fmt.Println("done")
}
