"""The training engine shared by the train and crossval stages: the fit loop over the store,
the dataset, callbacks, committed checkpoints, tf.distribute and the curves."""
