// Command lookups measures the latency of the admin API's feature look-ups (/v1/features/{key}) at
// a fixed rate, open loop: each request is due at its place in the schedule and its latency counts
// from then, so a slow answer delays no later request's clock (no coordinated omission).
//
//	go run ./test/bench/lookups -admin http://127.0.0.1:8080 -rate 1000 -duration 30s -keys 10000
//
// Keys are the generator's card ids (card-000000 …), drawn uniformly from -keys. It prints the
// count of answers by status and the latency quantiles; 200 and 404 (a key with no open window)
// are both answers, anything else is counted as an error.
package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"sync"
	"time"
)

func main() {
	admin := flag.String("admin", "http://127.0.0.1:8080", "admin server base URL")
	token := flag.String("token", os.Getenv("STREAMD_ADMIN_TOKEN"), "bearer token ($STREAMD_ADMIN_TOKEN)")
	rate := flag.Float64("rate", 1000, "look-ups per second")
	duration := flag.Duration("duration", 30*time.Second, "how long to send")
	keys := flag.Int("keys", 10000, "draw keys from card-000000 to card-(keys-1)")
	path := flag.String("path", "/v1/features/", "endpoint prefix (/v1/state/ to compare)")
	flag.Parse()

	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64, MaxConnsPerHost: 64}}
	n := int(*rate * duration.Seconds())
	lat := make([]time.Duration, n)
	status := make([]int, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64) // in flight at most (the admin server caps connections at 128); beyond it the schedule slips, and the latencies show it
	start := time.Now()
	for i := range n {
		due := start.Add(time.Duration(float64(i) / *rate * float64(time.Second)))
		if d := time.Until(due); d > 0 {
			time.Sleep(d)
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int, due time.Time) {
			defer func() { <-sem; wg.Done() }()
			req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("%s%scard-%06d", *admin, *path, rand.IntN(*keys)), nil)
			if *token != "" {
				req.Header.Set("Authorization", "Bearer "+*token)
			}
			resp, err := client.Do(req)
			if err != nil {
				status[i] = -1
			} else {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				status[i] = resp.StatusCode
			}
			lat[i] = time.Since(due)
		}(i, due)
	}
	wg.Wait()
	elapsed := time.Since(start)
	counts := map[int]int{}
	for _, s := range status {
		counts[s]++
	}
	slices.Sort(lat)
	q := func(p float64) time.Duration { return lat[min(len(lat)-1, int(p*float64(len(lat))))] }
	fmt.Printf("%d look-ups in %s (%.0f/s): statuses %v\n", n, elapsed.Round(time.Millisecond), float64(n)/elapsed.Seconds(), counts)
	fmt.Printf("latency p50 %s  p90 %s  p99 %s  p99.9 %s  max %s\n", q(0.50), q(0.90), q(0.99), q(0.999), lat[len(lat)-1])
	if counts[200]+counts[404] != n {
		os.Exit(1)
	}
}
