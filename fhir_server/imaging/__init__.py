"""The imaging service: DICOM instances, the RO-14 gate, ImagingStudy, QIDO/WADO."""
