"""SNS as boto3's ``sns`` client speaks it (the query protocol, Version 2010-03-31): requests mapped
to parameters, XML hints, ARNs, filter policies, delivery envelopes and retry schedules. Sans-IO."""
