from setuptools import find_packages, setup

setup(
    name="amu-tf",
    version="0.1.0",
    description=(
        "Keras 3 / TensorFlow model zoo with TFX-style components predicting melanoma "
        "immune-checkpoint-inhibitor response from RNA-seq, evaluated honestly."
    ),
    python_requires=">=3.11",
    packages=find_packages(include=["amu_tf", "amu_tf.*", "components", "pipelines"]),
    package_data={"amu_tf": ["resources/*.tsv", "resources/*.json", "kernels/*.cc"]},
    # the ranges a library user needs; `make` installs the exact versions of
    # requirements/lock.txt (refreshed by `make lock`)
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.12,<4",  # TensorFlow 2.21 asks for Keras >= 3.12
        "numpy>=1.26",
        "pandas>=2.0",
        "scikit-learn>=1.6",  # validate_data, __sklearn_tags__
        "xgboost>=2.0",
        "shap>=0.46",
        "click>=8.1",
        "matplotlib>=3.8",
        "lifelines>=0.28",
        "tqdm>=4.66",
        "anndata>=0.10",
        "tidepy==1.3.9",
        "statsmodels>=0.14",  # random-effects meta-analysis (combine_effects)
        "gseapy>=1.1",  # ssGSEA scores of the published signatures
        "markdown-it-py>=3",  # report.html from report.md
    ],
    extras_require={
        "dev": ["pytest>=8", "hypothesis", "pytest-xdist"],
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        "jax": ["jax[cpu]"],
    },
    entry_points={"console_scripts": ["amu=pipelines.cli:main"]},
)
