// mem.go: Go memory workloads for oomsim. Go's GC lets the heap grow to
// twice what is live (GOGC=100) before it collects, so a program holding
// 100 MiB while churning garbage peaks near 200 MiB; GOMEMLIMIT (Go 1.19)
// makes the GC run before that, at the cost of CPU.
//
//	heap  hold --live bytes in reachable slices, then allocate and drop
//	      --garbage bytes per second (default: as fast as it can) for --duration
//	leak  live growth to --size at --rate
//
// Usage: mem heap --live SIZE [--garbage SIZE] [--duration DUR]
//
//	mem leak --size SIZE [--rate SIZE] [--hold DUR]
//
// Sizes: 512Mi, 64Ki, 1Gi or bytes; durations: 500ms, 2s, 1m or seconds.
package main

import (
	"fmt"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"time"
)

const chunk = 1 << 20

var keep [][]byte
var sink []byte

func usage() {
	fmt.Fprintln(os.Stderr, "usage: mem heap --live SIZE [--garbage SIZE] [--duration DUR] | leak --size SIZE [--rate SIZE] [--hold DUR]")
	os.Exit(2)
}

func size(s string) int64 {
	m := regexp.MustCompile(`^(\d+)(Ki|Mi|Gi)?$`).FindStringSubmatch(s)
	if m == nil {
		usage()
	}
	n, _ := strconv.ParseInt(m[1], 10, 64)
	return n << map[string]uint{"": 0, "Ki": 10, "Mi": 20, "Gi": 30}[m[2]]
}

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

func touched(n int64) []byte {
	b := make([]byte, n)
	for i := int64(0); i < n; i += 4096 {
		b[i] = 1
	}
	return b
}

var last time.Time

func report(what string, have int64) {
	if time.Since(last) < 250*time.Millisecond {
		return
	}
	last = time.Now()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	fmt.Printf("%s %d MiB, heap %d MiB, heap goal %d MiB, gc %d\n", what, have>>20, ms.HeapAlloc>>20, ms.NextGC>>20, ms.NumGC)
}

// grow keeps live slices until `total`, no faster than `rate` bytes/s (0: at once).
func grow(total, rate int64) {
	start := time.Now()
	for have := int64(0); have < total; {
		if rate > 0 && float64(have) > float64(rate)*time.Since(start).Seconds() {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		keep = append(keep, touched(chunk))
		have += chunk
		report("live", have)
	}
}

func main() {
	if len(os.Args) < 2 || len(os.Args)%2 != 0 {
		usage()
	}
	mode, opts := os.Args[1], map[string]string{}
	allowed := map[string]map[string]bool{
		"heap": {"live": true, "garbage": true, "duration": true},
		"leak": {"size": true, "rate": true, "hold": true},
	}[mode]
	if allowed == nil {
		usage()
	}
	for i := 2; i < len(os.Args); i += 2 {
		k := os.Args[i]
		if len(k) < 3 || k[:2] != "--" || !allowed[k[2:]] {
			usage()
		}
		opts[k[2:]] = os.Args[i+1]
	}
	get := func(k, d string) string {
		if v, ok := opts[k]; ok {
			return v
		}
		return d
	}
	switch mode {
	case "heap":
		live := size(get("live", "0"))
		grow(live, 0)
		garbage, end := size(get("garbage", "0")), time.Now().Add(duration(get("duration", "5s")))
		start, made := time.Now(), int64(0)
		for time.Now().Before(end) {
			if garbage > 0 && float64(made) > float64(garbage)*time.Since(start).Seconds() {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			sink = touched(chunk) // dropped at the next allocation: garbage
			made += chunk
			report("live", live)
		}
	case "leak":
		grow(size(get("size", "0")), size(get("rate", "0")))
		time.Sleep(duration(get("hold", "0s")))
	}
	fmt.Println("done")
}
