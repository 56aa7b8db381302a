"""The Kafka wire protocol, sans-IO: request decoding, response encoding, record-batch checks.

Produce and Fetch (the hot APIs) are hand-written struct codecs that pass record batches through as
bytes; every other API goes through kio's generated request/response types (``entities``).
"""
