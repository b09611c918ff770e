"""NAB (Numenta Anomaly Benchmark) scoring and runner, written for cloudcircuit's detectors.

``data`` loads the corpus, ``scoring`` implements NAB's standard scoring, ``detectors`` wraps
every detector compared, ``runner`` optimises thresholds and scores per folder.
"""
