package leasing

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestHeld(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		name string
		l    Lease
		want bool
	}{
		{"before the deadline", Lease{Deadline: now.Add(time.Second)}, true},
		{"at the deadline", Lease{Deadline: now}, false},
		{"after the deadline", Lease{Deadline: now.Add(-time.Second)}, false},
		{"not ours (no deadline)", Lease{Owner: "other", Expires: now.Add(time.Hour)}, false},
	} {
		if got := tt.l.Held(now); got != tt.want {
			t.Errorf("%s: Held = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestErrLeaseLostWraps(t *testing.T) {
	err := fmt.Errorf("sql_storage: batch: %w (resource %q)", ErrLeaseLost, "r")
	if !errors.Is(err, ErrLeaseLost) {
		t.Fatal("a wrapped ErrLeaseLost must be recognizable")
	}
}
