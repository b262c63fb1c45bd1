"""Few-shot transfer: classifiers from a handful of labels, on pixels, on latent codes, and with
the unlabelled training images (graph propagation, clustering, self-training).

    heads      `(relu,32)->(softmax,10)` head notation
    batched    many small heads trained at once (stacked weights, batched matmuls)
    draws      reproducible labelled draws
    features   standardised pixel / code inputs
    graph      kNN graphs, label spreading, Poisson learning
    deskew     MNIST deskewing
    context    the shared study state: data, autoencoder, label-free artefacts built once
    beyond     methods that use the unlabelled images
    hog        gradient histograms: the features of the best graph
    selftrain  CNN self-training on graph pseudo-labels (the saved classifier)
    finetune   encoder fine-tuning
    cluster    spectral clustering of the HOG graph, matched accuracy, NMI, cluster-then-label
    cluster_report  `zspace cluster`'s outputs
    study      the study driver; report: its table, JSON, CSV and plots
    curve      learning curves with as many draws as each point's interval needs
    robustness shifted, rotated, thickened, thinned and downsampled test digits
    classify   saved classifiers and MNIST-style image preparation
"""
