"""The merge worker process of ``merging.py``."""

from eventfold.infra.filestore.merging import serve

if __name__ == "__main__":
    serve()
