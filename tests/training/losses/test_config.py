import pytest
from pydantic import ValidationError

from training.losses.config import CollaborationConfig, ObjectiveConfig, TapPair


def test_tap_pairs_accept_shorthand_forms():
    config = ObjectiveConfig(taps=["stage3", ["stage2", "stage3"], {"student": "stage4", "teacher": "stage4"}])
    assert [p.key() for p in config.taps] == ["stage3->stage3", "stage2->stage3", "stage4->stage4"]


def test_a_tap_pair_of_three_names_is_refused():
    with pytest.raises(ValidationError, match=r"\[student, teacher\]"):
        TapPair.model_validate(["a", "b", "c"])


def test_negative_temperature_is_refused_naming_the_field():
    with pytest.raises(ValidationError, match="kd_temperature"):
        ObjectiveConfig(kd_temperature=-1.0)


def test_unknown_field_is_refused_naming_it():
    with pytest.raises(ValidationError, match="spectrum_wieght"):
        ObjectiveConfig.model_validate({"spectrum_wieght": 1.0})


def test_all_weights_zero_is_refused():
    with pytest.raises(ValidationError, match="every loss weight is 0"):
        ObjectiveConfig(ce_weight=0, kd_weight=0, spectrum_weight=0, parameter_weight=0)


def test_spectrum_without_taps_is_refused():
    with pytest.raises(ValidationError, match="taps is empty"):
        ObjectiveConfig(taps=[])


def test_switched_off_terms_are_not_active():
    config = ObjectiveConfig(spectrum_weight=0, parameter_weight=0, taps=[], parameter_stages=[])
    assert config.active_weights() == {"ce": 1.0, "kd": 1.0}


def test_collaboration_mode_must_be_known():
    with pytest.raises(ValidationError, match="mode"):
        CollaborationConfig(mode="joint")


def test_one_low_spectrum_bin_is_refused_with_the_reason():
    with pytest.raises(ValidationError, match="spectrum_low_bins: 1 keeps only the zero-frequency bin"):
        ObjectiveConfig(spectrum_low_bins=1)
    ObjectiveConfig(spectrum_low_bins=1, spectrum_weight=0)  # no spectrum term, nothing to refuse


def test_terms_must_name_known_terms_with_a_weight():
    with pytest.raises(ValidationError, match="unknown term 'kdd'; the terms are ce, kd"):
        ObjectiveConfig(terms=["ce", "kdd"])
    with pytest.raises(ValidationError, match="terms lists 'feature' but feature_weight is 0"):
        ObjectiveConfig(terms=["ce", "feature"])
    assert ObjectiveConfig(terms=["ce", "kd"]).active_weights() == {"ce": 1.0, "kd": 1.0}
