//go:build race

package gbdt

// raceEnabled: the race detector makes the fixture comparison ~10x slower and allocation counts
// meaningless, so under it the tests compare fewer SHAP rows and skip the allocation checks.
const raceEnabled = true
