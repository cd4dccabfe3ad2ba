"""trainer: CLIPNET models trained from clipstore stores (through the readers only).

    model.build_model      the released rnn_v10 network (size knobs for CPU demos)
    losses.make_losses     cosine profile + λ·MSLE quantity; multiscale with pseudocount ε
    config.load_train_config / TrainConfig   one YAML per experiment (configs/ has examples)
    train.train / train_all                  resumable runs, ensembles, subsampling grids
    checkpoint             the exact-resume checkpoint pair (state.json + last.keras)
    distribute             strategy, workers, tf.data pipelines and step counts
    progress / preflight   what a run prints; argument checks before TensorFlow loads
    predict.load_predictor / predict_store   safe loading, ensemble mean, RC averaging
    released               CLIPNET's released fold_<k>.h5 models, loaded by layer via h5py
    storage                run folders, model files and experiment indexes (local or bucket)
    task                   `python -m trainer.task`, the cloud-job entry point

TensorFlow is imported only inside the functions that need it.
"""
