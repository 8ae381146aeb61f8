var spatialMatcher = (options, match) => {
  let warning = options.translations.warnings.keyPattern;
  if (match.turns === 1) {
    warning = options.translations.warnings.straightRow;
  }
  return {
    warning,
    suggestions: [options.translations.suggestions.longerKeyboardPattern]
  };
};

export { spatialMatcher as default };
//# sourceMappingURL=feedback.mjs.map
