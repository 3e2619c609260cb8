import math

import pytest

from common.stats import mean_se


def test_mean_se_is_sample_sd_over_root_n() -> None:
    mean, se = mean_se([1.0, 2.0, 6.0])
    assert mean == pytest.approx(3.0)
    # deviations -2, -1, 3: sample variance (4 + 1 + 9) / 2 = 7, so se = sqrt(7 / 3)
    assert se == pytest.approx(math.sqrt(7.0 / 3.0))
    assert mean_se([5.0, 5.0]) == (5.0, 0.0)


def test_mean_se_of_one_value_has_no_standard_error() -> None:
    mean, se = mean_se([2.5])
    assert mean == 2.5 and math.isnan(se)
    with pytest.raises(ValueError, match="no values"):
        mean_se([])
