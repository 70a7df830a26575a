package queue

import (
	"testing"

	"github.com/sluicelog/sluice/internal/testenv"
)

// TestMain fails the package's tests if a goroutine they started leaks.
func TestMain(m *testing.M) { testenv.VerifyNoLeaks(m) }
