"""`ferrymq bench sqs`: the SQS goals of issue 14, measured with a raw HTTP/1.1 load generator.

boto3 spends ~1 ms of client CPU per call, so it measures itself, not the broker. This generator
speaks the SQS JSON 1.0 protocol (``POST /``, ``X-Amz-Target: AmazonSQS.<Action>``) over
keep-alive sockets from pre-built request templates, many calls in flight, in 1-2 processes that
report their own CPU next to the broker's.

    http11    request templates and a sans-IO response parser
    calls     the SQS JSON bodies (botocore's service model shapes) and what is read back
    transport one keep-alive connection: raw asyncio protocol, or aiohttp (kept for comparison)
    pipeline  SendMessageBatch(10) -> ReceiveMessage(10) -> DeleteMessageBatch, C loops
    idle      N connections long-polling an empty queue
    workers   the workloads in 1-2 processes, merged
    targets   ferrymq serve, moto_server, the null SQS sink, or a URL
    sink      a null SQS server: the generator's own ceiling
    run       targets side by side in one run; table   the Markdown table
"""
