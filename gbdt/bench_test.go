package gbdt

import (
	"syscall"
	"testing"
	"time"
)

// cpuTime is the process's user+system CPU time. The benchmarks report rows per CPU second
// beside the wall-clock figures because these machines are shared: under load the wall clock
// counts the time the benchmark waited for a core, the CPU time does not.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, start time.Duration) {
	cpu := cpuTime() - start
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/row")
	b.ReportMetric(float64(b.N)/cpu.Seconds(), "rows/cpu-s")
}

// The benchmark models (testdata/models/bench_*) have 100 trees of depth 6, trained by gen.py on
// make_classification data; bench.py times the libraries on the same models. Results in
// docs/BENCHMARKS.md.

func benchPredict(b *testing.B, name string, nanRate float64) {
	m, s, rows := benchModelNaN(b, name, nanRate)
	out := make([]float64, m.Outputs())
	b.ReportAllocs()
	start := cpuTime()
	for i := 0; b.Loop(); i++ {
		s.Predict(rows[i%len(rows)], out)
	}
	reportCPU(b, start)
}

// Dense rows, and rows with 2% of the cells missing (about half the rows have a NaN).
func BenchmarkPredictXGBoost(b *testing.B)         { benchPredict(b, "bench_xgb.ubj.gz", 0) }
func BenchmarkPredictLightGBM(b *testing.B)        { benchPredict(b, "bench_lgb.txt.gz", 0) }
func BenchmarkPredictXGBoostMissing(b *testing.B)  { benchPredict(b, "bench_xgb.ubj.gz", 0.02) }
func BenchmarkPredictLightGBMMissing(b *testing.B) { benchPredict(b, "bench_lgb.txt.gz", 0.02) }

func benchContributions(b *testing.B, name string) {
	m, s, rows := benchModel(b, name)
	out := make([]float64, m.ContributionsLen())
	top := make([]Contribution, 0, 5)
	s.Contributions(rows[0], out)
	b.ReportAllocs()
	start := cpuTime()
	for i := 0; b.Loop(); i++ {
		s.Contributions(rows[i%len(rows)], out)
		top = m.TopK(out, 0, 5, top)
	}
	reportCPU(b, start)
}

func BenchmarkContributionsXGBoost(b *testing.B)  { benchContributions(b, "bench_xgb.ubj.gz") }
func BenchmarkContributionsLightGBM(b *testing.B) { benchContributions(b, "bench_lgb.txt.gz") }

func BenchmarkLoadXGBoost(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := LoadFile("testdata/models/bench_xgb.ubj.gz"); err != nil {
			b.Fatal(err)
		}
	}
}
