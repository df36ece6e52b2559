"""``store_child.py`` with every merge of index runs done by the merge worker process.

Usage: python merge_child.py STORE FIRST_COMMIT [MAX_COMMITS]
"""

from __future__ import annotations

import store_child
from eventfold.infra.filestore import merging

if __name__ == "__main__":
    merging.BACKGROUND_MIN = 0  # the runs of these tests are small
    store_child.main()
