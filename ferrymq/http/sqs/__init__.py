"""The SQS endpoint on the HTTP listener: AWS's SQS API over FerryMQ's own queues."""
