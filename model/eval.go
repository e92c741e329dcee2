package model

import (
	"fmt"
	"math"
	"strconv"

	"github.com/streamd/streamd/online"
	"github.com/streamd/streamd/online/drift"
	"github.com/streamd/streamd/online/metrics"
)

// rollingWindow is the number of recent examples the rolling metrics cover.
const rollingWindow = 1000

// evaluation is one model's prequential evaluation: each label scores the prediction the model
// made before it learned that label. Binary models: logloss, accuracy, ROC AUC, precision and recall
// at 0.5; regression: MAE and RMSE; multiclass: accuracy, log loss (of the probability given to
// the true class), macro-F1 and each class's recall; anomaly models have no labels to check.
type evaluation struct {
	task     online.Task
	logloss  *metrics.LogLoss
	accuracy *metrics.Accuracy
	auc      *metrics.ROCAUC
	pr       *metrics.PrecisionRecall
	mae      *metrics.MAE
	rmse     *metrics.RMSE
	report   *metrics.ClassReport // multiclass
	parts    []stateful           // the metrics above that this task type uses, in a fixed order
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err) // the arguments are constants of this file
	}
	return v
}

// MaxClassMetrics bounds the classes whose recall a multiclass model reports (in /v1/models and
// the metrics): the first MaxClassMetrics classes, so that a model of many classes cannot flood
// Prometheus with series.
const MaxClassMetrics = 32

// newEvaluation returns the evaluation of a model of task; classes is a multiclass model's.
func newEvaluation(task online.Task, classes int) *evaluation {
	e := &evaluation{task: task}
	switch task {
	case online.Binary:
		e.logloss = must(metrics.NewLogLoss(rollingWindow))
		e.accuracy = must(metrics.NewAccuracy(rollingWindow))
		e.auc = must(metrics.NewROCAUC(rollingWindow, 0))
		e.pr = must(metrics.NewPrecisionRecall(0.5, rollingWindow))
	case online.Regression:
		e.mae = must(metrics.NewMAE(rollingWindow))
		e.rmse = must(metrics.NewRMSE(rollingWindow))
	case online.Multiclass:
		e.accuracy = must(metrics.NewAccuracy(rollingWindow))
		e.logloss = must(metrics.NewLogLoss(rollingWindow))
		e.report = must(metrics.NewClassReport(max(classes, 2), rollingWindow))
	}
	switch task {
	case online.Binary:
		e.parts = []stateful{e.logloss, e.accuracy, e.auc, e.pr}
	case online.Regression:
		e.parts = []stateful{e.mae, e.rmse}
	case online.Multiclass:
		// Log loss and the class report came later: a state without them decodes (decodeState).
		e.parts = []stateful{e.accuracy, e.logloss, e.report}
	}
	return e
}

// update adds one example: score is what the model said before learning (P(y=1), the value, or for
// multiclass the predicted class), y the label; probs are a multiclass model's class probabilities
// (nil when they were not kept: no log loss then).
func (e *evaluation) update(score, y float64, probs []float64) {
	switch e.task {
	case online.Binary:
		e.logloss.Update(score, y)
		pred := 0
		if score >= 0.5 {
			pred = 1
		}
		e.accuracy.Update(pred, int(math.Round(y)))
		e.auc.Update(score, y)
		e.pr.Update(score, y)
	case online.Regression:
		e.mae.Update(score, y)
		e.rmse.Update(score, y)
	case online.Multiclass:
		e.accuracy.Update(int(score), int(y))
		if c := int(y); c >= 0 && c < len(probs) {
			e.logloss.UpdateTrue(probs[c])
		}
		e.report.Update(int(score), int(y))
	}
}

// loss is the per-example loss the drift detector watches: logloss (binary), absolute error
// (regression), 0/1 error (multiclass).
func (e *evaluation) loss(score, y float64) float64 {
	switch e.task {
	case online.Binary:
		p := min(max(score, 1e-15), 1-1e-15)
		if y >= 0.5 {
			return -math.Log(p)
		}
		return -math.Log(1 - p)
	case online.Regression:
		return math.Abs(score - y)
	case online.Multiclass:
		if int(score) == int(y) {
			return 0
		}
		return 1
	}
	return 0
}

// rollingLoss is the mean loss over the rolling window, for choosing a champion.
func (e *evaluation) rollingLoss() float64 {
	var v float64
	switch e.task {
	case online.Binary:
		v = e.logloss.Window()
	case online.Regression:
		v = e.mae.Window()
	case online.Multiclass:
		v = 1 - e.accuracy.Window()
	default:
		return math.Inf(1)
	}
	if math.IsNaN(v) {
		return math.Inf(1)
	}
	return v
}

func (e *evaluation) resetRolling() {
	// The metrics keep cumulative and rolling figures together; after a reset the model starts
	// over, and so does its evaluation.
	for _, r := range e.parts {
		r.Reset()
	}
}

type stateful interface {
	AppendState([]byte) []byte
	DecodeState([]byte) error
	Reset()
}

func (e *evaluation) appendState(dst []byte) []byte {
	for _, m := range e.parts {
		dst = appendBlob(dst, m.AppendState(nil))
	}
	return dst
}

func (e *evaluation) decodeState(b []byte) error {
	for i, m := range e.parts {
		if len(b) == 0 && e.task == online.Multiclass && i > 0 {
			// A multiclass evaluation saved before it had log loss and a class report: those
			// start empty.
			break
		}
		blob, rest, err := readBlob(b)
		if err != nil {
			return err
		}
		if err := m.DecodeState(blob); err != nil {
			return err
		}
		b = rest
	}
	if len(b) != 0 {
		return errCorrupt
	}
	return nil
}

// values returns the metrics, cumulative and rolling, with the examples they cover.
func (e *evaluation) values() map[string]evalValue {
	out := map[string]evalValue{}
	put := func(name string, cum, roll float64, n int64) {
		out[name] = evalValue{cumulative: cum, rolling: roll, n: n}
	}
	switch e.task {
	case online.Binary:
		n := e.logloss.Count()
		put("logloss", e.logloss.Value(), e.logloss.Window(), n)
		put("accuracy", e.accuracy.Value(), e.accuracy.Window(), n)
		put("auc", e.auc.Value(), e.auc.Window(), n)
		put("precision", e.pr.Precision(), e.pr.WindowPrecision(), n)
		put("recall", e.pr.Recall(), e.pr.WindowRecall(), n)
	case online.Regression:
		n := e.mae.Count()
		put("mae", e.mae.Value(), e.mae.Window(), n)
		put("rmse", e.rmse.Value(), e.rmse.Window(), n)
	case online.Multiclass:
		put("accuracy", e.accuracy.Value(), e.accuracy.Window(), e.accuracy.Count())
		put("logloss", e.logloss.Value(), e.logloss.Window(), e.logloss.Count())
		put("macro_f1", e.report.MacroF1(false), e.report.MacroF1(true), e.report.Count())
		for c := range min(e.report.Classes(), MaxClassMetrics) {
			// Weighted by the class's examples, so that averaging over partitions pools them.
			put(classRecallMetric(c), e.report.Recall(c, false), e.report.Recall(c, true), e.report.Support(c, false))
		}
	}
	// Undefined metrics (no positives yet, no examples) are left out rather than reported as NaN.
	for k, v := range out {
		if math.IsNaN(v.cumulative) || v.n == 0 {
			delete(out, k)
		} else if math.IsNaN(v.rolling) {
			v.rolling = v.cumulative
			out[k] = v
		}
	}
	return out
}

// classRecallMetric names class c's recall among a model's metrics: "recall/<c>" (the class index;
// the admin view and the metrics name it by its label where it has one).
func classRecallMetric(c int) string { return classRecallPrefix + strconv.Itoa(c) }

const classRecallPrefix = "recall/"

// errorOf is the per-example error the drift detector's error signal watches: 0/1 for classifiers
// (the class decided at 0.5 for binary models), the absolute error for regression (which has no
// error rate: there the signal is the loss).
func (e *evaluation) errorOf(score, y float64) float64 {
	switch e.task {
	case online.Binary:
		if (score >= 0.5) == (y >= 0.5) {
			return 0
		}
		return 1
	case online.Multiclass:
		if int(score) == int(y) {
			return 0
		}
		return 1
	}
	return e.loss(score, y)
}

// driftDetector watches the champion's per-example loss or error (DriftSpec.Signal) for a change
// in the configured direction.
type driftDetector struct {
	adwin *drift.ADWIN
	ph    *drift.PageHinkley
	err   bool // the signal is the error, not the loss
}

func newDriftDetector(s DriftSpec) (*driftDetector, error) {
	dir := drift.Up
	switch s.Direction {
	case "down":
		dir = drift.Down
	case "both":
		dir = drift.Both
	}
	d := &driftDetector{err: s.Signal == "error"}
	var err error
	switch s.Detector {
	case "adwin":
		delta := s.Delta
		if delta == 0 {
			delta = DefaultDriftDelta
		}
		d.adwin, err = drift.NewADWIN(drift.ADWINConfig{Direction: dir, Delta: delta})
	case "page_hinkley":
		d.ph, err = drift.NewPageHinkley(drift.PageHinkleyConfig{Direction: dir, Threshold: s.Threshold})
	default:
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("model: drift: %w", err)
	}
	return d, nil
}

// signal is what the detector watches of one example of e.
func (d *driftDetector) signal(e *evaluation, score, y float64) float64 {
	if d.err {
		return e.errorOf(score, y)
	}
	return e.loss(score, y)
}

func (d *driftDetector) update(x float64) bool {
	if d.adwin != nil {
		return d.adwin.Update(x)
	}
	return d.ph.Update(x)
}

// appendStats writes the detector's statistics at its last detection as JSON object members
// (`"window":..,...`), for the drift event and the log.
func (d *driftDetector) appendStats(b []byte) []byte {
	if d.adwin != nil {
		c := d.adwin.LastCut()
		b = append(b, `"window":`...)
		b = strconv.AppendInt(b, d.adwin.Width(), 10)
		b = append(b, `,"window_mean":`...)
		b = appendFloat(b, d.adwin.Mean())
		b = append(b, `,"before":{"values":`...)
		b = strconv.AppendInt(b, c.OldValues, 10)
		b = append(b, `,"mean":`...)
		b = appendFloat(b, c.OldMean)
		b = append(b, `},"after":{"values":`...)
		b = strconv.AppendInt(b, c.NewValues, 10)
		b = append(b, `,"mean":`...)
		b = appendFloat(b, c.NewMean)
		return append(b, '}')
	}
	l := d.ph.LastDetection()
	b = append(b, `"values":`...)
	b = strconv.AppendInt(b, l.Values, 10)
	b = append(b, `,"mean":`...)
	b = appendFloat(b, l.Mean)
	b = append(b, `,"rise":`...)
	b = appendFloat(b, l.Up)
	b = append(b, `,"fall":`...)
	return appendFloat(b, l.Down)
}

func (d *driftDetector) reset() {
	if d.adwin != nil {
		// ADWIN keeps its window after a detection: it has already dropped the old part.
		return
	}
	d.ph.Reset()
}

func (d *driftDetector) appendState(dst []byte) []byte {
	if d.adwin != nil {
		return d.adwin.AppendState(dst)
	}
	return d.ph.AppendState(dst)
}

// Signal bytes that lead a detector's saved state: a state without one (saved before the signal
// was configurable) watched the loss.
const (
	signalLoss  = 1
	signalError = 2
)

func (d *driftDetector) signalByte() byte {
	if d.err {
		return signalError
	}
	return signalLoss
}

// decodeState restores the detector from b, unless b was saved under another signal or another
// detector configuration (delta, threshold, direction): then the detector starts over, empty, as
// its new configuration says, rather than carry on with the old one.
func (d *driftDetector) decodeState(b []byte) error {
	sig := byte(signalLoss)
	if len(b) > 0 && (b[0] == signalLoss || b[0] == signalError) {
		sig, b = b[0], b[1:]
	}
	if d.adwin != nil {
		var a drift.ADWIN
		if err := a.DecodeState(b); err != nil {
			return err
		}
		if sig == d.signalByte() && a.Config() == d.adwin.Config() {
			*d.adwin = a
		}
		return nil
	}
	var p drift.PageHinkley
	if err := p.DecodeState(b); err != nil {
		return err
	}
	if sig == d.signalByte() && p.Config() == d.ph.Config() {
		*d.ph = p
	}
	return nil
}
