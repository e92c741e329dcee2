package stream

// LateReporter is implemented by operators whose processors call Task.Late (window operators). The
// runtime creates the operator's series of streamd_late_records_total at zero when it starts, so
// that a rate or an alert on late records has data before the first one arrives; an operator that
// reports late records without it gets its series only with its first late record.
type LateReporter interface {
	// ReportsLate marks the operator; it is never called.
	ReportsLate()
}
