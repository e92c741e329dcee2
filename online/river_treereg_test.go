package online_test

import (
	"math"
	"testing"

	"github.com/streamd/streamd/online"
)

// riverTreeRegression holds River 0.26.1's StandardScaler | HoeffdingTreeRegressor() figures from
// scripts/river_compare.py (progressive validation, defaults). River's tree on raw features is not
// the reference: its leaves' SGD diverges on TrumpApproval (MAE 4.7e8), so both sides scale.
var riverTreeRegression = map[string]regressionFigures{
	"trump_approval.csv": {0.9561, 2.2499},
	"chick_weights.csv":  {23.1619, 36.7336},
	"sp500_stocks.csv":   {0.5720, 0.7936},
}

// TestRiverTreeRegressor: hoeffding_tree_regressor at its defaults, on standardized features, is
// within 5% of River's MAE or better on each of River's bundled regression data sets.
func TestRiverTreeRegressor(t *testing.T) {
	for _, name := range []string{"trump_approval.csv", "chick_weights.csv", "sp500_stocks.csv"} {
		t.Run(name, func(t *testing.T) {
			xs, ys := loadCSV(t, name)
			river := riverTreeRegression[name]
			got := runRegression(t, online.TreeRegressorSpec{Dim: 16}, xs, ys)
			t.Logf("%s: streamd hoeffding_tree_regressor MAE %.4f RMSE %.4f; River %.4f %.4f", name, got.mae, got.rmse, river.mae, river.rmse)
			recordf("| %s | streamd hoeffding_tree_regressor (defaults) | %.4f | %.4f | %d |", name, got.mae, got.rmse, len(xs))
			if got.mae > 1.05*river.mae || math.IsNaN(got.mae) {
				t.Errorf("MAE %.4f, want within 5%% of River's %.4f", got.mae, river.mae)
			}
		})
	}
}
