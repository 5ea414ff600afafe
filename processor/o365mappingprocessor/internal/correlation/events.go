package correlation

import (
	"slices"
	"strings"
	"time"
)

// minEventsPerGroup is the least number of events a group keeps, whatever its threshold.
const minEventsPerGroup = 32

// event is one remembered record.
type event struct {
	t        time.Time
	id       string
	lat, lon float64 // travel
	value    string  // distinct
}

// events is a time-ordered, bounded list of events: the state of threshold and travel groups, and of
// each step of a sequence group.
type events []event

func (evs *events) size() int { return len(*evs) }

// add inserts ev in time order unless its record is already there (a redelivered record); at most
// capacity events are kept, the oldest dropped first.
func (evs *events) add(ev event, capacity int) bool {
	for i := range *evs {
		if (*evs)[i].id == ev.id && ev.id != "" {
			return false
		}
	}
	ev.id = strings.Clone(ev.id)
	i := len(*evs) // records mostly arrive in order, so this is an append
	for i > 0 && (*evs)[i-1].t.After(ev.t) {
		i--
	}
	*evs = slices.Insert(*evs, i, ev)
	if over := len(*evs) - capacity; over > 0 {
		// Shift down rather than reslice: a list kept at its capacity (travel keeps three points) would
		// otherwise give up its front slot on every add and reallocate on the next.
		*evs = slices.Delete(*evs, 0, over)
	}
	return true
}

// prune drops the events before cut.
func (evs *events) prune(cut time.Time) {
	i := 0
	for i < len(*evs) && (*evs)[i].t.Before(cut) {
		i++
	}
	*evs = slices.Delete(*evs, 0, i) // in place, as in add
}

func idsOf(evs []event) []string {
	ids := make([]string, 0, len(evs))
	for _, ev := range evs {
		if ev.id != "" {
			ids = append(ids, ev.id)
		}
	}
	return ids
}
