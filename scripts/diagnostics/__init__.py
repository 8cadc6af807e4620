"""test1.py, test2.py, motion_map_analyze.py and snr_experiment.py's work: embeddings, motion on/off,
motion statistics, SNR. The top layer."""
