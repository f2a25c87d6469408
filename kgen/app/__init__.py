"""Applications built on kgen: the demo page (`demo`), resumable training runs (`runs`) and the recipes they
train (`presets`).

kgen's model packages (flows, gans, diffusion, text) never import `kgen.app`; the CLI (`kgen demo`, `kgen train`,
`kgen sample`, `kgen export`) is its front end.
"""
