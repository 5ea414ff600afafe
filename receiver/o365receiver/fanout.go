package o365receiver

import (
	"errors"
	"reflect"

	"go.opentelemetry.io/collector/consumer/consumererror"
)

// allPermanent reports whether every part of err is permanent. A fan-out to several pipelines joins
// their errors, and consumererror.IsPermanent is true when any part is: a pipeline that asked for a retry
// would then lose the batch with the one that rejected it.
func allPermanent(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if reflect.TypeOf(e) == permanentType {
			return true // marked permanent as a whole, whatever it wraps
		}
		if j, ok := e.(interface{ Unwrap() []error }); ok {
			parts := j.Unwrap()
			for _, part := range parts {
				if !allPermanent(part) {
					return false
				}
			}
			return len(parts) > 0
		}
	}
	return false
}

// permanentType is the type of consumererror.NewPermanent's errors.
var permanentType = reflect.TypeOf(consumererror.NewPermanent(errors.New("")))
