"""tito: the TinyTorch command line (export pipeline, module workflow, student releases).

Hand-written; see ARCHITECTURE.md. Nothing generated imports from here.
"""
