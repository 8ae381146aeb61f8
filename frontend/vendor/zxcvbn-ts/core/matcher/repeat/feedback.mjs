var repeatMatcher = (options, match) => {
  let warning = options.translations.warnings.extendedRepeat;
  if (match.baseToken.length === 1) {
    warning = options.translations.warnings.simpleRepeat;
  }
  return {
    warning,
    suggestions: [options.translations.suggestions.repeated]
  };
};

export { repeatMatcher as default };
//# sourceMappingURL=feedback.mjs.map
