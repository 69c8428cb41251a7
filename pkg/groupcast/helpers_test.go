package groupcast_test

import (
	"errors"

	"github.com/groupcast/groupcast/pkg/groupcast"
)

func asError(err error, target **groupcast.Error) bool { return errors.As(err, target) }
