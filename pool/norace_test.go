//go:build !race

package pool

// raceEnabled says that the tests run under the race detector;
// RaceEnabled gives it to the package's external tests.
const (
	raceEnabled = false
	RaceEnabled = raceEnabled
)
