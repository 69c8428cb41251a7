package fanout

import (
	"fmt"

	"github.com/aws/aws-lambda-go/events"

	"github.com/groupcast/groupcast/pkg/dynamostore"
	"github.com/groupcast/groupcast/pkg/groupcast"
)

// The domain decides each event, its audience and its inbox when the change
// happens, and the store writes it as an outbox item in the change's
// transaction. The fan-out only reads those items back: it never decodes
// entity items, so no delivery rule lives here.

// deliveryFor reads the event of a stream record; ok is false for records
// that carry none: anything but an INSERT (a TTL expiry is a REMOVE) and
// any item that is not an event (the stream filter should already have
// dropped those).
func deliveryFor(rec events.DynamoDBEventRecord) (d groupcast.Delivery, ok bool, err error) {
	if rec.EventName != "INSERT" {
		return groupcast.Delivery{}, false, nil
	}
	image, err := toSDKImage(rec.Change.NewImage)
	if err != nil {
		return groupcast.Delivery{}, false, fmt.Errorf("new image: %w", err)
	}
	return dynamostore.DecodeEvent(image)
}
