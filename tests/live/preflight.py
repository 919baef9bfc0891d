"""Says in one line what `make test-redshift` needs and exits 10 when any of it is missing."""

from __future__ import annotations

import os
import sys

REQUIRED = {
    "ATLAS_URI": "MongoDB Atlas connection string (read-only user is enough)",
    "ATLAS_BUCKET_URL": "s3://bucket[/path] for the landing zone and COPY staging",
    "REDSHIFT_HOST": "cluster or workgroup endpoint",
    "REDSHIFT_USER": "database user",
    "REDSHIFT_PASSWORD": "its password",
    "REDSHIFT_IAM_ROLE": "IAM role ARN Redshift assumes to read the staging bucket",
}
SKIPPED = 10


def missing() -> list[str]:
    return [name for name in REQUIRED if not os.environ.get(name)]


def main() -> int:
    absent = missing()
    if absent:
        print(f"make test-redshift: nothing ran: set {', '.join(absent)} to run the live Redshift suite (see README)")
        return SKIPPED
    return 0


if __name__ == "__main__":
    sys.exit(main())
