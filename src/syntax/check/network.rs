//! Networks and their layers: names, dims, strides, counts.

use super::*;

impl<'a> Checker<'a> {
    // ---------------------------------------------------------------- networks

    pub(super) fn network(&mut self, f: usize, nd: &NetworkDef) -> (Option<Network>, NetSite) {
        let errors_before = self.diags.len();
        let mut site = NetSite {
            name: nd.name.text.clone(),
            file: f,
            span: nd.name.span,
            layers: Vec::new(),
            index: BTreeMap::new(),
        };
        let mut layers = Vec::new();
        for ld in &nd.layers {
            let LayerDef::Layer {
                kind, name, params, ..
            } = ld
            else {
                continue;
            };
            if name.text.is_empty() {
                self.error(
                    "empty-name",
                    f,
                    name.span,
                    "a layer name cannot be empty",
                    "",
                );
            }
            let lsite = self.layer(f, *kind, name, params);
            if let Some(first) = site.layer(&name.text) {
                let i = self.error(
                    "duplicate",
                    f,
                    name.span,
                    format!(
                        "layer `{}` is defined twice in network `{}`",
                        name.text, nd.name.text
                    ),
                    "defined again here",
                );
                let first = first.name;
                self.secondary(i, f, first, "first defined here");
                continue;
            }
            if let Some(l) = &lsite.layer {
                layers.push(l.clone());
            }
            site.index.insert(name.text.clone(), site.layers.len());
            site.layers.push((name.text.clone(), lsite));
        }
        if nd.layers.is_empty() {
            let i = self.error(
                "empty-network",
                f,
                nd.name.span,
                format!("network `{}` has no layers", nd.name.text),
                "",
            );
            self.hint(
                i,
                "add layers like `conv conv1 R=3 S=3 P=56 Q=56 C=64 K=64`",
            );
        }
        if nd.name.text.is_empty() {
            self.error(
                "empty-name",
                f,
                nd.name.span,
                "a network name cannot be empty",
                "",
            );
        }
        let net = (self.diags.len() == errors_before).then(|| Network {
            name: nd.name.text.clone(),
            layers,
        });
        (net, site)
    }

    pub(super) fn layer(
        &mut self,
        f: usize,
        kind: LayerKw,
        name: &Name,
        params: &[Param],
    ) -> LayerSite {
        let errors_before = self.diags.len();
        let mut dims = [1u64; 7];
        let mut dim_spans: [Option<Span>; 7] = [None; 7];
        // wstride, hstride, wdilation, hdilation, count
        let mut extra = [1u64; 5];
        let mut extra_spans: [Option<Span>; 5] = [None; 5];
        for p in params {
            let key = p.key.text.as_str();
            // Which slots the key sets: dims by index, extras by 7 + index.
            let slots: Vec<usize> = match (kind, key) {
                (LayerKw::Conv, k)
                    if k.len() == 1
                        && Dim::from_letter(k.chars().next().unwrap_or(' ')).is_some() =>
                {
                    vec![Dim::from_letter(k.chars().next().unwrap_or(' ')).map_or(0, Dim::index)]
                }
                (LayerKw::Matmul, "M" | "m") => vec![Dim::P.index()],
                (LayerKw::Matmul, "K" | "k") => vec![Dim::C.index()],
                (LayerKw::Matmul, "N" | "n") => vec![Dim::K.index()],
                (LayerKw::Conv, "stride") => vec![7, 8],
                (LayerKw::Conv, "wstride") => vec![7],
                (LayerKw::Conv, "hstride") => vec![8],
                (LayerKw::Conv, "dilation") => vec![9, 10],
                (LayerKw::Conv, "wdilation") => vec![9],
                (LayerKw::Conv, "hdilation") => vec![10],
                (_, "count") => vec![11],
                _ => {
                    let (code, what, known): (&str, String, &[&str]) = match kind {
                        LayerKw::Conv if key.len() == 1 => {
                            ("unknown-dim", format!("unknown dim `{key}`"), &[])
                        }
                        LayerKw::Conv => (
                            "unknown-param",
                            format!("unknown conv parameter `{key}`"),
                            &[
                                "stride",
                                "wstride",
                                "hstride",
                                "dilation",
                                "wdilation",
                                "hdilation",
                                "count",
                            ],
                        ),
                        LayerKw::Matmul => (
                            "unknown-param",
                            format!("unknown matmul parameter `{key}`"),
                            &["M", "K", "N", "count"],
                        ),
                    };
                    let i = self.error(code, f, p.key.span, what, "");
                    match kind {
                        LayerKw::Conv if code == "unknown-dim" => self.note(i, DIM_HINT),
                        LayerKw::Conv => self.note(
                            i,
                            "a conv takes the dims R S P Q C K N and stride, wstride, hstride, dilation, wdilation, hdilation, count",
                        ),
                        LayerKw::Matmul => self.note(
                            i,
                            "a matmul A[M,K] x B[K,N] takes M, K, N and count (it becomes P=M, C=K, K=N)",
                        ),
                    }
                    if let Some(s) = suggest(key, known.iter().copied()) {
                        self.hint(i, format!("did you mean `{s}`?"));
                    }
                    continue;
                }
            };
            let what = format!("`{key}`");
            let Some(v) = self.positive(f, &p.value, &what) else {
                continue;
            };
            for s in slots {
                let prev = if s < 7 {
                    dim_spans[s]
                } else {
                    extra_spans[s - 7]
                };
                if let Some(prev) = prev {
                    let i = self.error(
                        "duplicate",
                        f,
                        p.span,
                        format!("`{key}` sets a value set before"),
                        "set again here",
                    );
                    self.secondary(i, f, prev, "first set here");
                    break;
                }
                if s < 7 {
                    dims[s] = v;
                    dim_spans[s] = Some(p.span);
                } else {
                    extra[s - 7] = v;
                    extra_spans[s - 7] = Some(p.span);
                }
            }
        }
        // Overflow of the loop nest and of the input window.
        let macs = dims
            .iter()
            .try_fold(1u128, |acc, &d| acc.checked_mul(d as u128));
        if macs.is_none_or(|m| m > u64::MAX as u128) {
            let i = self.error(
                "overflow",
                f,
                name.span,
                format!("layer `{}` has more than 2^64 MACs", name.text),
                "",
            );
            self.note(
                i,
                format!("R*S*P*Q*C*K*N = {}", dims.map(|d| d.to_string()).join("*")),
            );
        }
        let window = |out: u64, stride: u64, filt: u64, dil: u64| {
            ((out as u128 - 1) * stride as u128 + (filt as u128 - 1) * dil as u128 + 1)
                <= u64::MAX as u128
        };
        if !window(dims[2], extra[0], dims[0], extra[2])
            || !window(dims[3], extra[1], dims[1], extra[3])
        {
            self.error(
                "overflow",
                f,
                name.span,
                format!(
                    "the input window of layer `{}` is larger than 2^64",
                    name.text
                ),
                "",
            );
        }
        let ok = self.diags.len() == errors_before && !name.text.is_empty();
        LayerSite {
            file: f,
            name: name.span,
            dims: dim_spans,
            layer: ok.then(|| Layer {
                name: name.text.clone(),
                kind: match kind {
                    LayerKw::Conv => LayerKind::Conv,
                    LayerKw::Matmul => LayerKind::Matmul,
                },
                dims,
                wstride: extra[0],
                hstride: extra[1],
                wdilation: extra[2],
                hdilation: extra[3],
                count: extra[4],
            }),
        }
    }
}
