"""What every AWS API FerryMQ speaks shares: the query protocol's forms, XML replies, errors,
message attributes and their MD5s, Signature V4. Sans-IO: bytes and dicts in, bytes and dicts out."""
