//go:build race

package strslab

const raceEnabled = true
