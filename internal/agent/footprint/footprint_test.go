package footprint

import (
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	prevGC := debug.SetGCPercent(100)
	prevLimit := debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(prevGC)
		debug.SetMemoryLimit(prevLimit)
	})
	tests := []struct {
		name       string
		env        map[string]string
		gcPercent  int
		limit      int64
		want       GCSettings
		wantGC     int
		wantLimit  int64
		wantString string
	}{
		{name: "defaults: GC target 20, no limit", want: GCSettings{DefaultGCPercent, -1}, wantGC: DefaultGCPercent, wantLimit: 1<<63 - 1,
			wantString: "gc_percent=20 memory_limit=GOMEMLIMIT"},
		{name: "explicit", gcPercent: 80, limit: 64 << 20, want: GCSettings{80, 64 << 20}, wantGC: 80, wantLimit: 64 << 20,
			wantString: "gc_percent=80 memory_limit=64MiB"},
		{name: "negative leaves Go's defaults", gcPercent: -1, limit: -1, want: GCSettings{-1, -1}, wantGC: 100, wantLimit: 1<<63 - 1,
			wantString: "gc_percent=GOGC memory_limit=GOMEMLIMIT"},
		{name: "the operator's GOGC and GOMEMLIMIT win", env: map[string]string{"GOGC": "100", "GOMEMLIMIT": "1GiB"},
			want: GCSettings{-1, -1}, wantGC: 100, wantLimit: 1<<63 - 1, wantString: "gc_percent=GOGC memory_limit=GOMEMLIMIT"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(1<<63 - 1)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			got := TuneGC(tt.gcPercent, tt.limit)
			if got != tt.want {
				t.Errorf("TuneGC = %+v, want %+v", got, tt.want)
			}
			if s := got.String(); s != tt.wantString {
				t.Errorf("String() = %q, want %q", s, tt.wantString)
			}
			if gc := debug.SetGCPercent(100); gc != tt.wantGC {
				t.Errorf("GC percent now %d, want %d", gc, tt.wantGC)
			}
			if l := debug.SetMemoryLimit(-1); l != tt.wantLimit {
				t.Errorf("memory limit now %d, want %d", l, tt.wantLimit)
			}
		})
	}
}
