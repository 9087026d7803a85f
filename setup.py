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
    install_requires=[
        "tensorflow>=2.21,<2.22",
        "keras>=3.10",
        "numpy",
        "pandas",
        "scikit-learn",
        "xgboost",
        "shap",
        "click",
        "matplotlib",
        "lifelines",
        "tqdm",
        "anndata",
        "tidepy==1.3.9",
    ],
    extras_require={
        "dev": ["pytest", "hypothesis", "pytest-xdist"],
        "gpu": ["tensorflow[and-cuda]>=2.21,<2.22"],
        "jax": ["jax[cpu]"],
    },
    entry_points={"console_scripts": ["amu=pipelines.cli:main"]},
)
