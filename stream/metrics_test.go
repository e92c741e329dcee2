package stream

import (
	"errors"
	"reflect"
	"testing"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// TestMetricsAllRegistered: every collector of the runtime's metrics is registered by newMetrics
// (registering it again is refused as already registered), and a registry that refuses one makes
// newMetrics fail.
func TestMetricsAllRegistered(t *testing.T) {
	reg := prometheus.NewRegistry()
	m, err := newMetrics(reg, DefaultTransactionTimeout)
	if err != nil {
		t.Fatal(err)
	}
	v := reflect.ValueOf(m).Elem()
	checked := 0
	for i := range v.NumField() {
		f := v.Field(i)
		// The fields are unexported: read them through their address.
		c, ok := reflect.NewAt(f.Type(), unsafe.Pointer(f.UnsafeAddr())).Elem().Interface().(prometheus.Collector)
		if !ok || v.Type().Field(i).Name == "committed" || v.Type().Field(i).Name == "aborted" {
			continue // children of transactions
		}
		checked++
		var are prometheus.AlreadyRegisteredError
		if err := reg.Register(c); !errors.As(err, &are) {
			t.Errorf("metrics.%s is not registered by newMetrics (Register again: %v)", v.Type().Field(i).Name, err)
		}
	}
	if checked < 30 {
		t.Fatalf("checked %d collectors; the reflection missed the fields", checked)
	}
	if _, err := newMetrics(reg, DefaultTransactionTimeout); err == nil {
		t.Fatal("newMetrics on a registry that already holds its metrics succeeded")
	}
}
