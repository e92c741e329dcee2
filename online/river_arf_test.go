package online_test

import (
	"math"
	"testing"

	"github.com/streamd/streamd/online"
)

// arfSeeds are the seeds both sides run: the forests draw at random (River from Python's Mersenne
// Twister, streamd from splitmix64), so single runs differ by their draws and the means over the
// seeds are what compare, as for Half-Space Trees.
var arfSeeds = []int64{1, 2, 3}

// riverARF holds River 0.26.1's ARFClassifier(seed=1..3) figures from scripts/river_compare.py
// --arf (progressive validation, defaults, raw features), per seed.
var riverARF = map[string][3]treeFigures{
	"sea":           {{0.9829, 0.9788, 0.9986}, {0.9837, 0.9794, 0.9985}, {0.9833, 0.9798, 0.9985}},
	"sea_drift":     {{0.9762, 0.9788, 0.9969}, {0.9747, 0.9794, 0.9964}, {0.9756, 0.9798, 0.9967}},
	"agrawal":       {{0.9774, 0.9704, 0.9977}, {0.9565, 0.9322, 0.9953}, {0.9759, 0.9592, 0.9974}},
	"agrawal_drift": {{0.8932, 0.9704, 0.9446}, {0.8792, 0.9322, 0.9426}, {0.9016, 0.9592, 0.9554}},
	"stagger":       {{0.9995, 0.9990, 0.9994}, {0.9997, 0.9994, 0.9994}, {0.9995, 0.9990, 0.9995}},
	"stagger_drift": {{0.9963, 0.9990, 0.9993}, {0.9965, 0.9994, 0.9992}, {0.9962, 0.9990, 0.9987}},
}

// riverARFRegression holds River's StandardScaler | ARFRegressor(seed=1..3) MAE and RMSE.
var riverARFRegression = map[string][3]regressionFigures{
	"trump_approval.csv": {{0.7068, 2.0409}, {0.7666, 2.0636}, {0.8275, 2.0811}},
	"chick_weights.csv":  {{25.6757, 40.7390}, {25.8502, 40.3634}, {25.4519, 40.2084}},
	"sp500_stocks.csv":   {{0.5732, 0.7983}, {0.5726, 0.7969}, {0.5699, 0.7924}},
}

// TestRiverARF runs arf_classifier at its defaults over the synthetic streams (with and without
// drift) for seeds 1-3 and requires the mean accuracy (overall and before the drift) and AUC within
// 0.005 of River's means, or better.
func TestRiverARF(t *testing.T) {
	for _, name := range []string{"sea", "sea_drift", "agrawal", "agrawal_drift", "stagger", "stagger_drift"} {
		t.Run(name, func(t *testing.T) {
			xs, ys := loadCSV(t, name+".csv.gz")
			var got, river treeFigures
			for i, seed := range arfSeeds {
				f, l := runClassifier(t, online.ARFClassifierSpec{Dim: 16, ForestSpec: online.ForestSpec{Seed: seed}}, xs, ys, 5000)
				w, d := l.(*online.ARF).Detections()
				r := riverARF[name][i]
				t.Logf("seed %d: streamd %.4f (before drift %.4f) AUC %.4f, %d warnings, %d drifts; River %.4f (%.4f) %.4f", seed, f.acc, f.accBefore, f.auc, w, d, r.acc, r.accBefore, r.auc)
				recordf("| %s | streamd arf_classifier (seed %d) | %.4f | %.4f | %.4f | %d |", name, seed, f.acc, f.accBefore, f.auc, len(xs))
				n := float64(len(arfSeeds))
				got.acc, got.accBefore, got.auc = got.acc+f.acc/n, got.accBefore+f.accBefore/n, got.auc+f.auc/n
				river.acc, river.accBefore, river.auc = river.acc+r.acc/n, river.accBefore+r.accBefore/n, river.auc+r.auc/n
			}
			t.Logf("means: streamd %.4f (%.4f) %.4f; River %.4f (%.4f) %.4f", got.acc, got.accBefore, got.auc, river.acc, river.accBefore, river.auc)
			if got.acc < river.acc-0.005 || got.accBefore < river.accBefore-0.005 || got.auc < river.auc-0.005 {
				t.Errorf("mean accuracy %.4f (before drift %.4f), AUC %.4f: want within 0.005 of River's %.4f (%.4f), %.4f",
					got.acc, got.accBefore, got.auc, river.acc, river.accBefore, river.auc)
			}
		})
	}
}

// TestRiverARFRegressor runs arf_regressor at its defaults on standardized features for seeds 1-3
// and requires the mean MAE within 5% of River's mean, or better.
func TestRiverARFRegressor(t *testing.T) {
	for _, name := range []string{"trump_approval.csv", "chick_weights.csv", "sp500_stocks.csv"} {
		t.Run(name, func(t *testing.T) {
			xs, ys := loadCSV(t, name)
			var got, river float64
			for i, seed := range arfSeeds {
				f := runRegression(t, online.ARFRegressorSpec{ForestSpec: online.ForestSpec{Seed: seed}, TreeRegressorSpec: online.TreeRegressorSpec{Dim: 16}}, xs, ys)
				r := riverARFRegression[name][i]
				t.Logf("seed %d: streamd MAE %.4f RMSE %.4f; River %.4f %.4f", seed, f.mae, f.rmse, r.mae, r.rmse)
				recordf("| %s | streamd arf_regressor (seed %d) | %.4f | %.4f | %d |", name, seed, f.mae, f.rmse, len(xs))
				got += f.mae / float64(len(arfSeeds))
				river += r.mae / float64(len(arfSeeds))
			}
			t.Logf("mean MAE: streamd %.4f, River %.4f", got, river)
			if got > 1.05*river || math.IsNaN(got) {
				t.Errorf("mean MAE %.4f, want within 5%% of River's %.4f or better", got, river)
			}
		})
	}
}
