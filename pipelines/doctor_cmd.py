"""`amu doctor`: what this machine gives amu-tf (CPU, compiler, kernel, GPU), in a few lines."""

import click

_AVX_FLAGS = ("avx2", "avx512f", "avx512_bf16", "avx512_fp16")


@click.command("doctor")
@click.option("--rebuild", is_flag=True,
              help="Forget a remembered failed kernel build and try to compile again.")
def command(rebuild):
    """Print the CPU, the C++ compiler and flags, the attention kernel's status and the GPUs.

    The attention kernel speeds up training of the amu:* models about 4x on a CPU; without it
    training uses TensorFlow ops and gives the same model for a seed, only slower.
    """
    import keras
    import tensorflow as tf

    from amu_tf.kernels import build
    from amu_tf.kernels import tiny_attention as kernel

    if rebuild:
        gone = build.clear_failures()
        click.echo(f"forgot {gone} failed kernel build(s)")
    info = build.describe()
    flags = build.cpu_flags()
    avx = " ".join(f for f in _AVX_FLAGS if f in flags) or "none"
    click.echo(f"cpu: {info.get('cpu') or build.cpu_model()} (ISA level "
               f"{build.isa_level() or 'n/a'}; {avx})")
    if info["compiler"] is None:
        click.echo(f"compiler: {build.no_compiler_message()}")
    else:
        click.echo(f"compiler: {info['compiler']} ({info['version'] or 'version unknown'})")
        click.echo(f"kernel flags: {' '.join(info['flags'])} (targets tried in order: "
                   f"{', '.join(info['targets'])}; {build.MARCH_ENV} forces one)")
    click.echo(f"tensorflow {tf.__version__}, keras {keras.__version__} "
               f"(backend {keras.backend.backend()})")
    click.echo(kernel.status())
    gpus = tf.config.list_physical_devices("GPU")
    click.echo(f"gpu: {', '.join(g.name for g in gpus)}" if gpus else "gpu: none found")
