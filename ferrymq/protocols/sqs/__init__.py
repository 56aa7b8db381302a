"""The SQS API as FerryMQ speaks it (AWS JSON 1.0 and the query protocol): requests decoded into
one parameter shape, replies and errors encoded, queue names, attributes and receipt handles.
Sans-IO; ferrymq.http.sqs maps the actions onto the core's queues."""
