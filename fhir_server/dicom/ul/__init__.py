"""An asyncio DICOM Upper Layer acceptor (PS3.8) for the node's storage associations."""
