//go:build race

package forward_test

// raceEnabled: the race detector instruments the code (a few more allocations per
// request) and makes sync.Pool drop a quarter of what is put back at random.
const raceEnabled = true
