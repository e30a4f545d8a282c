"""The distillation objective as configuration (torchdistill's idea): validated once, then trusted."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class TapPair(BaseModel):
    """A student tap distilled from a teacher tap. YAML may write ``stage3`` (same name on both
    sides), ``[stage2, stage3]`` or ``{student: stage2, teacher: stage3}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    student: str
    teacher: str

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"student": value, "teacher": value}
        if isinstance(value, list | tuple):
            if len(value) != 2:
                raise ValueError(f"a tap pair is [student, teacher], got {value!r}")
            return {"student": value[0], "teacher": value[1]}
        return value

    def key(self) -> str:
        return f"{self.student}->{self.teacher}"


def _pairs(*names: str) -> list[TapPair]:
    return [TapPair(student=n, teacher=n) for n in names]


PositiveFloat = Field(gt=0)

SpectrumKernel = Literal["auto", "fused", "fft"]


class ObjectiveConfig(BaseModel):
    """Loss terms and their weights. Greek letters are the paper's: α=kd_weight, β=spectrum_weight,
    γ=parameter_weight, τ_kd=kd_temperature, τ_p=parameter_temperature. Every ``<term>_weight``
    field is one term of ``training.losses.objective.TERMS``; a weight of 0 switches its term off
    entirely (nothing is computed for it), and so does leaving it out of ``terms`` when that is set."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    ce_weight: float = Field(1.0, ge=0)
    kd_weight: float = Field(1.0, ge=0)
    spectrum_weight: float = Field(1.0, ge=0)
    parameter_weight: float = Field(0.1, ge=0)
    feature_weight: float = Field(0.0, ge=0, description="FitNets raw-feature MSE baseline")
    terms: list[str] | None = Field(
        None,
        description=(
            "only these terms are on, at their weights; the others count as 0. A grid row (ablation) "
            "names what it switches on, so a new term is off in every row without editing them"
        ),
    )
    kd_temperature: float = Field(4.0, gt=0)
    parameter_temperature: float = Field(1.0, gt=0)
    taps: list[TapPair] = Field(default_factory=lambda: _pairs("stage2", "stage3", "stage4"))
    parameter_stages: list[TapPair] = Field(default_factory=lambda: _pairs("stage1", "stage2", "stage3", "stage4"))
    spectrum_log_amplitude: bool = False
    spectrum_low_bins: int | None = Field(None, ge=1)
    spectrum_phase: bool = False
    spectrum_kernel: SpectrumKernel = Field(
        "auto",
        description=(
            "how teacher taps become spectra: fused (one torch.compile'd pass over each tap), fft "
            "(torch.fft), auto (fused on CUDA, fft elsewhere). The same values either way"
        ),
    )
    kernel_mismatch: Literal["resample", "error"] = "resample"
    weighting: Literal["fixed", "uncertainty"] = "fixed"

    @model_validator(mode="after")
    def _terms_have_what_they_need(self) -> ObjectiveConfig:
        weights = self.weights()
        for name in self.terms or []:
            if name not in weights:
                raise ValueError(f"terms: unknown term {name!r}; the terms are {', '.join(weights)}")
            if weights[name] == 0:
                raise ValueError(f"terms lists {name!r} but {name}_weight is 0: give it a weight")
        active = self.active_weights()
        if not active:
            raise ValueError(f"every loss weight is 0: at least one of {'/'.join(weights)} must be > 0")
        if ("spectrum" in active or "feature" in active) and not self.taps:
            raise ValueError("taps is empty but spectrum_weight or feature_weight is > 0: name at least one tap pair")
        if "spectrum" in active and self.spectrum_low_bins == 1:
            raise ValueError(
                "spectrum_low_bins: 1 keeps only the zero-frequency bin, which normalises to 1 on both sides, "
                "so the spectrum term would be 0; keep 2 or more"
            )
        if "parameter" in active and not self.parameter_stages:
            raise ValueError("parameter_stages is empty but parameter_weight is > 0: name at least one stage pair")
        return self

    def weights(self) -> dict[str, float]:
        """Term name → configured weight, for every term, in field order."""
        return {
            name.removesuffix("_weight"): getattr(self, name)
            for name in type(self).model_fields
            if name.endswith("_weight")
        }

    def active_weights(self) -> dict[str, float]:
        """Term name → weight, for every term that is switched on."""
        listed = self.weights() if self.terms is None else {n: w for n, w in self.weights().items() if n in self.terms}
        return {name: w for name, w in listed.items() if w > 0}


class CollaborationConfig(BaseModel):
    """``frozen``: classic distillation. ``mutual``: the teacher also learns, minimising
    ``CE(z_t, y) + α_t τ_c² KL(p_s || p_t)`` (α_t=mutual_weight, τ_c=mutual_temperature)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    mode: Literal["frozen", "mutual"] = "frozen"
    mutual_weight: float = Field(1.0, ge=0)
    mutual_temperature: float = Field(4.0, gt=0)


CE_ONLY = ObjectiveConfig(terms=["ce"])
"""Cross-entropy alone: a teacher's training, and the student trained without a teacher."""
