package correlation

import (
	"math"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	a "github.com/otelcol-o365/otelcol-o365/internal/o365attr"
)

// travel: two matching records of a group whose geo points are farther apart than `max_speed_kmh`
// allows in the time between them (in either arrival order); the group keeps its latest three points.

// Defaults and bounds of travel rules.
const (
	defaultMaxSpeedKmh   = 900.0
	defaultMinDistanceKm = 500.0
	travelEventsPerGroup = 3
)

type travelConfig struct {
	Common      `yaml:",inline"`
	Match       `yaml:",inline"`
	MaxSpeedKmh positive    `yaml:"max_speed_kmh"`
	MinDistance nonNegative `yaml:"min_distance_km"`
	Latitude    attr        `yaml:"latitude"`
	Longitude   attr        `yaml:"longitude"`
}

func (c *travelConfig) build(b *builder) kind {
	if len(c.GroupBy) == 0 {
		b.require("group_by")
	}
	k := &travelKind{match: c.set(b.d, b.n, b.key, b.present), maxSpeed: defaultMaxSpeedKmh, minDist: defaultMinDistanceKm,
		latAttr: a.GeoLocationLat, lonAttr: a.GeoLocationLon}
	if b.present["max_speed_kmh"] {
		k.maxSpeed = c.MaxSpeedKmh.v
	}
	if b.present["min_distance_km"] {
		k.minDist = c.MinDistance.v
	}
	if c.Latitude != "" {
		k.latAttr = string(c.Latitude)
	}
	if c.Longitude != "" {
		k.lonAttr = string(c.Longitude)
	}
	b.admit(&k.match)
	return k
}

type travelKind struct {
	match            condSet
	maxSpeed         float64 // km/h
	minDist          float64 // km
	latAttr, lonAttr string
}

func (k *travelKind) newState() state { return new(events) }

// observe compares a record's point with the group's recent ones and fires on the fastest pair that is
// farther apart than min_distance_km and faster than max_speed_kmh.
func (k *travelKind) observe(s *scope, rec *Record) *fire {
	if !k.match.matches(rec.Attrs) {
		return nil
	}
	lat, ok1 := attrFloat(rec.Attrs, k.latAttr)
	lon, ok2 := attrFloat(rec.Attrs, k.lonAttr)
	if !ok1 || !ok2 || lat < -90 || lat > 90 || lon < -180 || lon > 180 {
		return nil
	}
	g := s.group(rec, true)
	if g == nil {
		return nil
	}
	points := g.st.(*events)
	p := event{t: rec.Time, id: rec.ID, lat: lat, lon: lon}
	var q event
	found, bestSpeed, bestDist := false, 0.0, 0.0
	for _, prev := range *points {
		if prev.id == p.id && p.id != "" {
			return nil // redelivered
		}
		dt := p.t.Sub(prev.t)
		if dt < 0 {
			dt = -dt
		}
		if dt > s.r.Window {
			continue
		}
		dist := haversineKm(prev.lat, prev.lon, p.lat, p.lon)
		if dist < k.minDist || dist == 0 {
			continue
		}
		speed := math.Inf(1)
		if dt > 0 {
			speed = dist / dt.Hours()
		}
		if speed > k.maxSpeed && (!found || speed > bestSpeed) {
			q, found, bestSpeed, bestDist = prev, true, speed, dist
		}
	}
	points.add(p, travelEventsPerGroup)
	g.touch(rec.Time)
	points.prune(g.last.Add(-s.r.Window))
	if !found {
		return nil
	}
	p.id = strings.Clone(p.id)
	first, second := q, p
	if second.t.Before(first.t) {
		first, second = second, first
	}
	f := &fire{g: g, start: first.t, end: second.t, ids: []string{first.id, second.id},
		details: []Detail{{Key: a.IncidentDistanceKm, Value: math.Round(bestDist*10) / 10},
			{Key: a.IncidentSpeedKmh, Value: roundSpeed(bestSpeed)}}}
	// Keep only the later point of the pair: the next comparison starts from where the user is now.
	*points = append((*points)[:0], second)
	return f
}

func roundSpeed(s float64) float64 {
	if math.IsInf(s, 1) {
		return -1 // the two sign-ins have the same time
	}
	return math.Round(s)
}

// attrFloat reads a numeric attribute (the normalizer writes coordinates as doubles).
func attrFloat(attrs pcommon.Map, k string) (float64, bool) {
	v, ok := attrs.Get(k)
	if !ok {
		return 0, false
	}
	switch v.Type() {
	case pcommon.ValueTypeDouble:
		f := v.Double()
		return f, !math.IsNaN(f) && !math.IsInf(f, 0)
	case pcommon.ValueTypeInt:
		return float64(v.Int()), true
	}
	return 0, false
}

const earthRadiusKm = 6371.0088

func haversineKm(lat1, lon1, lat2, lon2 float64) float64 {
	rad := math.Pi / 180
	dLat, dLon := (lat2-lat1)*rad, (lon2-lon1)*rad
	h := math.Sin(dLat/2)*math.Sin(dLat/2) + math.Cos(lat1*rad)*math.Cos(lat2*rad)*math.Sin(dLon/2)*math.Sin(dLon/2)
	return 2 * earthRadiusKm * math.Asin(math.Min(1, math.Sqrt(h)))
}
