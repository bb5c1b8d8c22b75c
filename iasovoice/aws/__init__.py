"""AWS side of IasoVoice: Amazon Connect flows, outbound calls and the `flows`/`dial` commands.

Everything here runs on an operator's machine or in CI, never inside a call: it only needs boto3
and the standard library, and every AWS client is passed in so tests can put botocore's Stubber in front of it.
"""

from iasovoice.aws.settings import ConnectSettings

__all__ = ["ConnectSettings"]
