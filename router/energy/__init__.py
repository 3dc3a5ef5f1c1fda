"""Energy, carbon and cost estimates for every route and for the all-large counterfactual."""
