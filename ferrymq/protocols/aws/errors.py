"""AWS errors as the SDKs read them: a code, a message, an HTTP status and who is at fault.

The JSON protocol names the error by its model shape (``__type``) and, for services that were query
services first (SQS), repeats the old query code in the ``x-amzn-query-error`` header, which botocore
turns into ``Error.Code``; the query protocol sends the old code in an XML ``<Error>``.
"""

from __future__ import annotations

from dataclasses import dataclass

# shape (the JSON protocol's __type) -> (query code, HTTP status). Common errors, then SQS's, SNS's.
CODES: dict[str, tuple[str, int]] = {
    "InvalidAction": ("InvalidAction", 400),
    "InvalidParameterValue": ("InvalidParameterValue", 400),
    "InvalidParameterCombination": ("InvalidParameterCombination", 400),
    "MissingParameter": ("MissingParameter", 400),
    "MalformedQueryString": ("MalformedQueryString", 404),
    "InvalidQueryParameter": ("InvalidQueryParameter", 400),
    "ValidationError": ("ValidationError", 400),
    "SerializationException": ("SerializationException", 400),
    "AccessDenied": ("AccessDenied", 403),
    "InvalidClientTokenId": ("InvalidClientTokenId", 403),
    "SignatureDoesNotMatch": ("SignatureDoesNotMatch", 403),
    "IncompleteSignature": ("IncompleteSignature", 400),
    "MissingAuthenticationToken": ("MissingAuthenticationToken", 403),
    "RequestExpired": ("RequestExpired", 400),
    "InternalFailure": ("InternalFailure", 500),
    "RequestEntityTooLarge": ("RequestEntityTooLarge", 413),
    "QueueDoesNotExist": ("AWS.SimpleQueueService.NonExistentQueue", 400),
    "QueueNameExists": ("QueueAlreadyExists", 400),
    "QueueDeletedRecently": ("AWS.SimpleQueueService.QueueDeletedRecently", 400),
    "ReceiptHandleIsInvalid": ("ReceiptHandleIsInvalid", 400),
    "MessageNotInflight": ("AWS.SimpleQueueService.MessageNotInflight", 400),
    "BatchEntryIdsNotDistinct": ("AWS.SimpleQueueService.BatchEntryIdsNotDistinct", 400),
    "EmptyBatchRequest": ("AWS.SimpleQueueService.EmptyBatchRequest", 400),
    "TooManyEntriesInBatchRequest": ("AWS.SimpleQueueService.TooManyEntriesInBatchRequest", 400),
    "BatchRequestTooLong": ("AWS.SimpleQueueService.BatchRequestTooLong", 400),
    "InvalidBatchEntryId": ("AWS.SimpleQueueService.InvalidBatchEntryId", 400),
    "PurgeQueueInProgress": ("AWS.SimpleQueueService.PurgeQueueInProgress", 403),
    "UnsupportedOperation": ("AWS.SimpleQueueService.UnsupportedOperation", 400),
    "InvalidAttributeName": ("InvalidAttributeName", 400),
    "InvalidAttributeValue": ("InvalidAttributeValue", 400),
    "InvalidMessageContents": ("InvalidMessageContents", 400),
    "InvalidIdFormat": ("InvalidIdFormat", 400),
    "OverLimit": ("OverLimit", 403),
    "InvalidAddress": ("InvalidAddress", 404),
    "InvalidSecurity": ("InvalidSecurity", 403),
    "ResourceNotFoundException": ("ResourceNotFoundException", 404),
    "RequestThrottled": ("RequestThrottled", 400),
    # SNS (query only: keyed by botocore's shape names; SNS's ResourceNotFound clashes with SQS's)
    "InvalidParameterException": ("InvalidParameter", 400),
    "InvalidParameterValueException": ("ParameterValueInvalid", 400),
    "NotFoundException": ("NotFound", 404),
    "ResourceNotFound": ("ResourceNotFound", 404),
    "AuthorizationErrorException": ("AuthorizationError", 403),
    "InternalErrorException": ("InternalError", 500),
    "BatchEntryIdsNotDistinctException": ("BatchEntryIdsNotDistinct", 400),
    "EmptyBatchRequestException": ("EmptyBatchRequest", 400),
    "TooManyEntriesInBatchRequestException": ("TooManyEntriesInBatchRequest", 400),
    "InvalidBatchEntryIdException": ("InvalidBatchEntryId", 400),
    "BatchRequestTooLongException": ("BatchRequestTooLong", 400),
    "TagLimitExceededException": ("TagLimitExceeded", 400),
    "TopicLimitExceededException": ("TopicLimitExceeded", 403),
    "SubscriptionLimitExceededException": ("SubscriptionLimitExceeded", 403),
    "FilterPolicyLimitExceededException": ("FilterPolicyLimitExceeded", 403),
}


@dataclass
class AwsError(Exception):
    """One AWS error. ``shape`` must be a key of CODES (or of a service's table merged into it)."""

    shape: str
    message: str

    def __post_init__(self) -> None:
        assert self.shape in CODES, self.shape

    @property
    def query_code(self) -> str:
        return CODES[self.shape][0]

    @property
    def status(self) -> int:
        return CODES[self.shape][1]

    @property
    def sender_fault(self) -> bool:
        return self.status < 500

    def __str__(self) -> str:
        return f"{self.query_code}: {self.message}"


def invalid(message: str) -> AwsError:
    return AwsError("InvalidParameterValue", message)


def missing(name: str) -> AwsError:
    return AwsError("MissingParameter", f"The request must contain the parameter {name}.")
